//! Prompt and answer text for the synthetic fleet.
//!
//! The generator asks for an input (free-form or a golden case) and an output
//! of roughly a target length; text comes from per-app templates filled with
//! varied slot values. Some inputs carry planted personal data (emails, phone
//! numbers, Luhn-valid card numbers, `sk-` API keys) so the scrubber has work.
//! Golden-case outputs are rendered from a seed derived from the case, the
//! prompt version and the response model, so replays repeat unless one of
//! those changes (the snapshot-diff drift scenario).

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;

/// Golden cases per app (fixed inputs replayed by CI).
pub const GOLDEN_CASES: usize = 20;

/// Templates of one app archetype.
struct Kind {
    /// Questions with one `{}` slot each.
    questions: &'static [&'static str],
    /// Values for the slot.
    slots: &'static [&'static str],
    /// Sentences answers are assembled from.
    answers: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind {
        questions: &[
            "Where can six of us eat near {} tonight, vegetarian-friendly, under $30 a head?",
            "Suggest a quiet lunch spot close to {} that takes reservations for 12:30.",
            "Any good ramen within walking distance of {}? We have 45 minutes.",
            "Team dinner for 10 near {} on Thursday, one guest is gluten-free. Ideas?",
        ],
        slots: &[
            "the Market St office",
            "Union Square",
            "the Berlin Mitte office",
            "King's Cross",
            "Pier 39",
            "the Austin campus",
        ],
        answers: &[
            "Green Table on 3rd Street has a large vegetarian menu and a private room for groups.",
            "Nonna's Kitchen is a 6 minute walk away and takes bookings up to 8 people online.",
            "Ramen Kaze is usually fastest at lunch; expect a 10 minute wait after noon.",
            "For gluten-free options, Harvest & Co. marks every dish and has a dedicated fryer.",
            "Prices average $22-28 per person before drinks.",
            "If you want something quieter, the upstairs area at Lumen Cafe is rarely full.",
            "I checked opening hours: all three are open until at least 10 pm.",
        ],
    },
    Kind {
        questions: &[
            "Summarise this ticket for the on-call engineer: customer reports {} since the last deploy.",
            "TICKET-48213: {} affecting the EU tenant. Please summarise and suggest priority.",
            "Condense the thread below into 3 bullet points. Issue: {}.",
            "Customer escalation: {}. Summarise impact and next steps.",
        ],
        slots: &[
            "login timeouts on the mobile app",
            "duplicate invoices being emailed",
            "CSV export failing above 10k rows",
            "SSO redirect loop in Safari",
            "webhook deliveries delayed by 20 minutes",
            "search returning stale results",
        ],
        answers: &[
            "Impact: a subset of enterprise customers in the EU region since 09:40 UTC.",
            "The issue started after release 2026.11.3 and correlates with the new session cache.",
            "Workaround: customers can retry after clearing cookies; support has shared the steps.",
            "Suggested priority: P2, no data loss reported.",
            "Next steps: roll back the cache flag, add monitoring on redirect counts, update the customer by 17:00.",
            "Action items: (1) confirm scope with the tenant admin, (2) attach logs from the gateway, (3) link the incident doc.",
            "Two similar tickets were closed last month with the same root cause.",
        ],
    },
    Kind {
        questions: &[
            "How many days of {} do I get in my first year?",
            "What is the policy on {} for contractors?",
            "Can I carry over unused {} into next year?",
            "Who approves {} requests in the Dublin office?",
        ],
        slots: &[
            "parental leave",
            "remote work from abroad",
            "annual leave",
            "sick leave",
            "training budget",
            "home office equipment",
        ],
        answers: &[
            "According to the Employee Handbook section 4.2, full-time employees accrue 25 days per year.",
            "Requests need manager approval in Workday at least two weeks in advance.",
            "Up to 5 unused days can be carried over and must be used by 31 March.",
            "Contractors are covered by their agency agreement rather than this policy.",
            "Working abroad is allowed for up to 30 days per calendar year with HR sign-off.",
            "The learning budget is EUR 1,500 per person per year, approved by your line manager.",
            "If your situation is not covered here, contact the People team through the HR portal.",
        ],
    },
    Kind {
        questions: &[
            "Draft a follow-up email to the buyer at {} after yesterday's demo.",
            "Write a short cold email to {} about our analytics add-on.",
            "Rewrite this email to {} so it sounds less pushy.",
            "Draft a renewal reminder for {} with a 10% multi-year discount.",
        ],
        slots: &[
            "Northwind Traders",
            "Globex Logistics",
            "Initech",
            "Contoso Retail",
            "Umbrella Health",
            "Stark Components",
        ],
        answers: &[
            "Hi Dana, thanks again for your time yesterday and the thoughtful questions from your team.",
            "As promised, I have attached the security overview and the pricing for 250 seats.",
            "Many teams like yours cut reporting time by a third in the first quarter.",
            "Would a 20 minute call next Tuesday or Wednesday work to walk through the rollout plan?",
            "If you sign a two-year renewal before the 30th, we can apply a 10% discount.",
            "Best regards, Sam",
            "Happy to loop in our solutions engineer for the integration questions.",
        ],
    },
    Kind {
        questions: &[
            "Extract vendor, invoice number, date, currency and total from this invoice from {}.",
            "Parse the attached PDF invoice ({}) into JSON with line items.",
            "Invoice from {}: find the due date and the VAT amount.",
            "Classify this document from {} as invoice, credit note or receipt and extract totals.",
        ],
        slots: &[
            "Acme Office Supplies",
            "Blue Harbor Freight",
            "Kiefer GmbH",
            "Lumen Cloud Services",
            "Pacific Paper Co.",
            "Orbit Telecom",
        ],
        answers: &[
            "{\"vendor\": \"Acme Office Supplies\", \"invoice_number\": \"INV-20931\", \"currency\": \"USD\"}",
            "\"date\": \"2026-10-28\", \"due_date\": \"2026-11-27\", \"total\": 1842.50",
            "\"line_items\": [{\"description\": \"A4 paper, 80gsm\", \"qty\": 40, \"unit_price\": 6.25}]",
            "\"vat\": {\"rate\": 0.19, \"amount\": 294.18}",
            "Document type: invoice. Confidence: high.",
            "\"payment_terms\": \"net 30\", \"po_number\": \"PO-7781\"",
        ],
    },
    Kind {
        questions: &[
            "Summarise the transcript of the {} and list decisions and owners.",
            "Write meeting notes for the {}; keep it under one page.",
            "What action items came out of the {}?",
            "Turn this transcript of the {} into minutes for people who missed it.",
        ],
        slots: &[
            "weekly platform sync",
            "Q4 planning session",
            "design review for the billing service",
            "incident retro for the Nov 2 outage",
            "hiring committee",
            "customer advisory board call",
        ],
        answers: &[
            "Attendees: Priya, Marco, Lena, Tom (notes), Aisha joined late.",
            "Decision: ship the new onboarding flow behind a flag on 12 November.",
            "Owner: Marco to draft the migration plan and share it by Friday.",
            "Risk raised: the data team needs two more weeks for the warehouse change.",
            "Action items: Lena to book the load test, Priya to update the roadmap, Tom to circulate these notes.",
            "Open question: whether to deprecate the v1 API in Q1 or Q2; revisit next week.",
            "The group agreed to move the sync to Tuesdays starting next month.",
        ],
    },
    Kind {
        questions: &[
            "Check whether the {} clause in this supplier contract deviates from our playbook.",
            "Flag risky wording in the {} section of the attached MSA.",
            "Compare the {} clause with our standard template and summarise differences.",
            "Is the {} clause acceptable for a low-risk vendor?",
        ],
        slots: &[
            "limitation of liability",
            "indemnification",
            "termination for convenience",
            "data processing",
            "governing law",
            "auto-renewal",
        ],
        answers: &[
            "The liability cap is 12 months of fees, in line with the playbook.",
            "Deviation: the indemnity excludes IP claims, which our template requires.",
            "Termination for convenience requires 90 days notice; the playbook allows at most 60.",
            "Recommendation: acceptable for a low-risk vendor with one redline on notice periods.",
            "Governing law is Delaware; no change needed.",
            "The auto-renewal clause lacks a reminder obligation; suggest adding 30 days notice.",
        ],
    },
    Kind {
        questions: &[
            "How do I {} on my work laptop?",
            "My {} stopped working after the update, what should I do?",
            "Is there a self-service way to {}?",
            "Who do I contact to {}?",
        ],
        slots: &[
            "reset my VPN token",
            "install Python 3.12",
            "get access to the finance share",
            "connect to the office printer",
            "enroll a new phone in MDM",
            "request a second monitor",
        ],
        answers: &[
            "Open Self Service, search for the item and click Install; it takes about 5 minutes.",
            "Restart the laptop once the update finishes, then sign in to the VPN client again.",
            "Access requests go through the IT portal under Access > Shared drives; your manager approves them.",
            "If the problem persists, open a ticket with the error message and a screenshot.",
            "Printers are added automatically when you are on the office Wi-Fi.",
            "Hardware requests ship within 3 business days to the office or your home address.",
        ],
    },
];

const FIRST_NAMES: &[&str] = &["jane", "omar", "li", "maria", "kofi", "anna", "raj", "sofia"];
const LAST_NAMES: &[&str] = &["doe", "haddad", "chen", "garcia", "mensah", "novak", "patel", "rossi"];
const DOMAINS: &[&str] = &["acme-corp.com", "example.org", "northwind.io", "contoso.com"];
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn pick<'a, R: Rng + ?Sized>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn kind(index: usize) -> &'static Kind {
    &KINDS[index % KINDS.len()]
}

/// Appends `len` random alphanumerics: ids, API keys.
pub fn push_alnum<R: Rng + ?Sized>(rng: &mut R, len: usize, out: &mut String) {
    for _ in 0..len {
        out.push(char::from(ALNUM[rng.random_range(0..ALNUM.len())]));
    }
}

/// A 16-digit Visa-style card number whose last digit satisfies the Luhn check.
pub fn luhn_card<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut digits: Vec<u32> = vec![4];
    digits.extend((0..14).map(|_| rng.random_range(0..10u32)));
    // Luhn: double every second digit from the right, counting the check digit as position 1.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let mut out = String::with_capacity(19);
    for (i, d) in digits.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(char::from_digit(*d, 10).unwrap_or('0'));
    }
    out
}

/// Appends one piece of planted personal data to `out`.
fn push_pii<R: Rng + ?Sized>(rng: &mut R, out: &mut String) {
    match rng.random_range(0..4u8) {
        0 => {
            let _ = write!(
                out,
                " Please reply to {}.{}@{}.",
                pick(rng, FIRST_NAMES),
                pick(rng, LAST_NAMES),
                pick(rng, DOMAINS)
            );
        }
        1 => {
            let _ = write!(out, " You can call me on +1 415-555-{:04}.", rng.random_range(100..10_000u32));
        }
        2 => {
            let _ = write!(out, " My corporate card is {} if a deposit is needed.", luhn_card(rng));
        }
        _ => {
            out.push_str(" The script uses OPENAI_API_KEY=sk-proj-");
            push_alnum(rng, 40, out);
            out.push_str(" in case that matters.");
        }
    }
}

/// A free-form user input for an app; `pii_rate` of them carry planted personal data.
pub fn input<R: Rng + ?Sized>(rng: &mut R, content_kind: usize, pii_rate: f64) -> String {
    let kind = kind(content_kind);
    let template = pick(rng, kind.questions);
    let mut out = template.replacen("{}", pick(rng, kind.slots), 1);
    if rng.random_bool(pii_rate) {
        push_pii(rng, &mut out);
    }
    out
}

/// The fixed input of golden case `case` (no personal data: CI fixtures are curated).
pub fn golden_input(content_kind: usize, case: usize) -> String {
    let kind = kind(content_kind);
    let question = kind.questions[case % kind.questions.len()];
    let slot = kind.slots[(case / kind.questions.len()) % kind.slots.len()];
    format!("{} [case {case}]", question.replacen("{}", slot, 1))
}

/// An answer of roughly `target_chars` characters assembled from the app's answer sentences.
pub fn output<R: Rng + ?Sized>(rng: &mut R, content_kind: usize, target_chars: usize) -> String {
    const TRANSITIONS: &[&str] = &["Also, ", "In addition, ", "Note: ", "To add: ", "One more point: "];
    let kind = kind(content_kind);
    let answers = kind.answers;
    let mut out = String::with_capacity(target_chars + 160);
    // Walk the sentences in a random rotation so long answers do not repeat a
    // sentence back to back; later passes read like follow-up paragraphs.
    let mut position = rng.random_range(0..answers.len());
    let step = 1 + rng.random_range(0..answers.len().saturating_sub(1).max(1));
    let mut written = 0usize;
    while out.len() < target_chars {
        if !out.is_empty() {
            out.push_str(if written.is_multiple_of(answers.len()) { "\n\n" } else { " " });
        }
        if written >= answers.len() && written.is_multiple_of(answers.len()) {
            out.push_str(pick(rng, TRANSITIONS));
        }
        out.push_str(answers[position % answers.len()]);
        position += step;
        written += 1;
    }
    out
}

/// A golden-case answer: identical across replays with the same prompt version
/// and response model, except for an occasional near-identical variant.
pub fn golden_output<R: Rng + ?Sized>(rng: &mut R, content_kind: usize, case_key: &str, target_chars: usize) -> String {
    let seed = blake3::hash(case_key.as_bytes());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(seed.as_bytes());
    let mut fixed = ChaCha8Rng::from_seed(bytes);
    let mut out = output(&mut fixed, content_kind, target_chars);
    // LLMs are not deterministic: a small share of replays rewords the ending.
    if rng.random_bool(0.12) {
        out.push_str(" Let me know if you need anything else.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn_ok(number: &str) -> bool {
        let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
        let sum: u32 = digits
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
            .sum();
        sum.is_multiple_of(10)
    }

    #[test]
    fn card_numbers_pass_luhn() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let card = luhn_card(&mut rng);
            assert_eq!(card.chars().filter(char::is_ascii_digit).count(), 16);
            assert!(luhn_ok(&card), "{card}");
        }
    }

    #[test]
    fn pii_is_planted_at_the_requested_rate() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let with_pii = (0..2000)
            .filter(|_| {
                let text = input(&mut rng, 1, 0.5);
                text.contains('@') || text.contains("+1 415") || text.contains("sk-proj-") || text.contains("card")
            })
            .count();
        assert!((800..1200).contains(&with_pii), "{with_pii}");
        assert!(!input(&mut rng, 0, 0.0).contains('@'));
    }

    #[test]
    fn golden_outputs_repeat_for_the_same_key() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let texts: Vec<String> = (0..50).map(|_| golden_output(&mut rng, 2, "gc-x-1|v1|m", 300)).collect();
        let base = texts.iter().filter(|t| **t == texts[0]).count();
        assert!(base > 25, "{base}");
        assert_ne!(golden_output(&mut rng, 2, "gc-x-1|v2|m", 300), golden_output(&mut rng, 2, "gc-x-1|v1|m", 300));
        assert_eq!(golden_input(3, 5), golden_input(3, 5));
        assert_ne!(golden_input(3, 5), golden_input(3, 6));
    }

    #[test]
    fn outputs_reach_the_target_length() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let text = output(&mut rng, 5, 1200);
        assert!(text.len() >= 1200 && text.len() < 1400);
    }
}
