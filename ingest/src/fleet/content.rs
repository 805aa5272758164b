//! Prompt and answer text for the synthetic fleet.
//!
//! The generator asks for an input (free-form or a golden case) and an output
//! of roughly a target length; text comes from per-app templates filled with
//! varied slot values. Some inputs carry planted personal data (emails, phone
//! numbers, Luhn-valid card numbers, `sk-` API keys, JSON web tokens) so the scrubber has work;
//! [`planted_pii`] finds it again, so tests can check none of it reaches the lake.
//! Golden-case outputs are rendered from a seed derived from the case, the
//! prompt version and the response model, so replays repeat unless one of
//! those changes (the snapshot-diff drift scenario).

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

/// The kinds of personal data planted in inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlantedPii {
    /// `first.last@domain`.
    Email,
    /// `+1 415-555-0123`.
    Phone,
    /// A Luhn-valid 16-digit card number in groups of four.
    Card,
    /// An OpenAI project key, `sk-proj-` and 40 alphanumerics.
    ApiKey,
    /// A three-part base64url JSON web token signed with HS256.
    Jwt,
}

impl PlantedPii {
    /// Every kind.
    pub const ALL: [PlantedPii; 5] =
        [PlantedPii::Email, PlantedPii::Phone, PlantedPii::Card, PlantedPii::ApiKey, PlantedPii::Jwt];

    /// The sentence a value of this kind is planted in: the text before it and after it. The
    /// value ends the input, so [`planted_pii`] can cut it out between the two.
    fn sentence(self) -> (&'static str, &'static str) {
        match self {
            PlantedPii::Email => (" Please reply to ", "."),
            PlantedPii::Phone => (" You can call me on ", "."),
            PlantedPii::Card => (" My corporate card is ", " if a deposit is needed."),
            PlantedPii::ApiKey => (" The script uses OPENAI_API_KEY=", " in case that matters."),
            PlantedPii::Jwt => (" The session cookie holds ", " if you need to reproduce it."),
        }
    }
}

/// `{"alg":"HS256","typ":"JWT"}`, base64url: the header of most JWTs in the wild.
const JWT_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Appends `bytes` in unpadded base64url, the alphabet of JWT parts.
fn push_base64url(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |acc, (i, &byte)| acc | u32::from(byte) << (16 - 8 * i));
        for sextet in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * sextet) & 63) as usize]));
        }
    }
}

/// A JWT whose subject and signature come from `secret` (alphanumerics, a subset of base64url).
fn jwt(secret: &str) -> String {
    let claims =
        format!(r#"{{"sub":"user-{}","scope":"invoices:read","iat":1793491200}}"#, &secret[..secret.len().min(8)]);
    let mut token = String::with_capacity(JWT_HEADER.len() + 2 * claims.len() + secret.len());
    token.push_str(JWT_HEADER);
    token.push('.');
    push_base64url(claims.as_bytes(), &mut token);
    token.push('.');
    token.push_str(secret);
    token
}

/// Appends one piece of planted personal data to `out`.
fn push_pii<R: Rng + ?Sized>(rng: &mut R, out: &mut String) {
    let (kind, value) = match rng.random_range(0..4u8) {
        0 => {
            (PlantedPii::Email, format!("{}.{}@{}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES), pick(rng, DOMAINS)))
        }
        1 => (PlantedPii::Phone, format!("+1 415-555-{:04}", rng.random_range(100..10_000u32))),
        2 => (PlantedPii::Card, luhn_card(rng)),
        _ => {
            let mut secret = String::with_capacity(40);
            push_alnum(rng, 40, &mut secret);
            // A JWT takes some of the API keys' turns, with the same draws, so that adding it left
            // every other value of a seed's fleet as it was.
            if secret.starts_with(|c: char| c.is_ascii_uppercase()) {
                (PlantedPii::Jwt, jwt(&secret))
            } else {
                (PlantedPii::ApiKey, format!("sk-proj-{secret}"))
            }
        }
    };
    let (before, after) = kind.sentence();
    out.push_str(before);
    out.push_str(&value);
    out.push_str(after);
}

/// The personal data planted in `input` (text from [`input`]), if any, and its kind.
pub fn planted_pii(input: &str) -> Option<(PlantedPii, &str)> {
    PlantedPii::ALL.into_iter().find_map(|kind| {
        let (before, after) = kind.sentence();
        let start = input.rfind(before)? + before.len();
        let end = input.len().checked_sub(after.len()).filter(|&end| end > start && input.ends_with(after))?;
        Some((kind, &input[start..end]))
    })
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
        let with_pii = (0..2000).filter(|_| planted_pii(&input(&mut rng, 1, 0.5)).is_some()).count();
        assert!((800..1200).contains(&with_pii), "{with_pii}");
        assert!(planted_pii(&input(&mut rng, 0, 0.0)).is_none());
    }

    #[test]
    fn every_kind_of_planted_pii_is_found_again_whole() -> Result<(), Box<dyn std::error::Error>> {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..400 {
            let mut text = "How do I reset my VPN token?".to_owned();
            let before = text.len();
            push_pii(&mut rng, &mut text);
            let (kind, value) = planted_pii(&text).ok_or_else(|| format!("nothing found in {text:?}"))?;
            let (lead, tail) = kind.sentence();
            assert_eq!(text, format!("{}{lead}{value}{tail}", &text[..before]));
            let shape_ok = match kind {
                PlantedPii::Email => value.contains('@') && !value.ends_with('.'),
                PlantedPii::Phone => value.starts_with("+1 415-555-") && value.len() == 15,
                PlantedPii::Card => value.chars().filter(char::is_ascii_digit).count() == 16,
                PlantedPii::ApiKey => value.starts_with("sk-proj-") && value.len() == 48,
                PlantedPii::Jwt => {
                    let parts: Vec<&str> = value.split('.').collect();
                    parts.len() == 3
                        && parts[0] == JWT_HEADER
                        && parts[1].starts_with("eyJ")
                        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                }
            };
            assert!(shape_ok, "{kind:?}: {value}");
            *seen.entry(kind).or_insert(0u32) += 1;
        }
        assert_eq!(seen.len(), PlantedPii::ALL.len(), "{seen:?}");
        assert!(planted_pii("What is the policy on annual leave for contractors?").is_none());
        Ok(())
    }

    #[test]
    fn base64url_matches_the_standard_encoding() {
        let encode = |bytes: &[u8]| {
            let mut out = String::new();
            push_base64url(bytes, &mut out);
            out
        };
        assert_eq!(encode(br#"{"alg":"HS256","typ":"JWT"}"#), JWT_HEADER);
        // RFC 4648 test vectors, unpadded, and the two characters base64url changes.
        for (input, encoded) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")]
        {
            assert_eq!(encode(input.as_bytes()), encoded);
        }
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
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
