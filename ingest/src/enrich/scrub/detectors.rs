//! What each kind of PII looks like: a pattern, the capture that is the secret, how far the
//! secret reaches, the validator that tells it from a look-alike, and words that say a match is
//! something else. The scrubber compiles these once and searches every text with all of them.

use super::PiiKind;
use super::validate::{
    bare_phone, card, iban, international_phone, ipv6, national_phone, nino, paired_phone, password_like,
    password_value, secret_value, ssn, token_like,
};

/// Checks a candidate and returns the length of the prefix that is really
/// PII (a candidate may have swallowed a trailing word), or `None`.
pub(super) type Validator = fn(&str) -> Option<usize>;

/// Which text a detector's capture group stands for.
#[derive(Clone, Copy)]
pub(super) enum Extent {
    /// The capture itself.
    Capture,
    /// The prefix of the capture that the validator accepts, if any.
    Checked(Validator),
    /// As `Checked`, for a number written in groups, which the pattern may
    /// take together with groups of another number before it (`qty 2 4111
    /// 1111 1111 1111`, `DE44 DE89 3704 ...`), or with groups after it: when
    /// no prefix is valid and stands alone, the match is tried again a group
    /// shorter, and from each later group ([`from_later_groups`](super::from_later_groups)).
    Grouped(Validator),
    /// As `Checked`; and when the capture opens a list (`"tel":[...]`), or is
    /// the `[` of one whose first item is something else (`"tel":["n/a",
    /// ...]`), each item of the list that the validator accepts whole, since
    /// the key names them all.
    Listed(Validator),
    /// As `Checked`, for an address of groups and colons that a label may
    /// precede, spelt like a group (`db:` before `2001:db8::1`): the match
    /// then opens with the label, and is tried again after it while it does
    /// not validate or stops short of the address's end ([`past_labels`](super::past_labels)).
    PastLabels(Validator),
    /// The capture is a PEM private key's header: the key runs to its footer, or without one
    /// (a cut sample) to the end of its base64 ([`pem_block`](super::pem_block)).
    PemBlock,
    /// The capture opens a literal: a quote, and the value runs to the
    /// quote that closes it, or a number, which is the whole value. A pattern
    /// cannot say which quote closes a value: it may hold quotes and
    /// backslashes escaped for the opening quote's depth of JSON nesting
    /// (`"abc\"def"`, `\"abc\\\"def\"`).
    Literal,
}

/// One detector: a pattern, the capture group that is the secret (0 = whole
/// match) or opens it, whether digits may not touch it, how far the secret
/// reaches, and words that, just before a match, say it is something else.
pub(super) struct Detector {
    pub(super) kind: PiiKind,
    pub(super) pattern: &'static str,
    pub(super) group: usize,
    pub(super) numeric: bool,
    pub(super) extent: Extent,
    pub(super) not_after: &'static [&'static str],
}

/// A quote around a key or value, as written or escaped for JSON inside a
/// string: `\"`, `\\\"` one level further down (a tool call's arguments in
/// a message list in an OTLP line), or `\u0022` (.NET's default encoder).
macro_rules! quote {
    () => {
        r#"(?:\\*["']|\\+u0022)"#
    };
}

/// A non-ASCII character as a JSON `\uXXXX` escape (Python's `ensure_ascii`,
/// .NET's default encoder), at any depth of nesting: a letter of an address
/// such as `j\u00fcrgen@m\u00fcller.de`. ASCII escapes are left out, so
/// `\u000a` or `\u0022` next to an address is not taken for part of it.
macro_rules! escaped_non_ascii {
    () => {
        r"\\+u(?:00[89a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3})"
    };
}

/// A letter or digit of an email address, written or escaped.
macro_rules! address_char {
    () => {
        concat!(r"(?:[\p{L}\p{N}]|", escaped_non_ascii!(), ")")
    };
}

/// A label of a domain name: letters and digits, hyphens inside.
macro_rules! domain_label {
    () => {
        concat!(address_char!(), "(?:(?:", address_char!(), "|-)*", address_char!(), ")?")
    };
}

/// The dot between labels, written or escaped.
macro_rules! dot {
    () => {
        r"(?:\.|\\+u002[eE])"
    };
}

/// A value without quotes: up to a space, a quote or a delimiter. A backslash
/// belongs to it (`abc\def`, `p\\ss`, `\/`), except where it may begin an
/// escape, at this depth of nesting or a deeper one, of a control character,
/// a quote or another ASCII character (`\n`, `\\n`, `\"`, `\u0022`): prose in
/// JSON stays prose, and the escape of a closing quote is left whole. A
/// non-ASCII letter escaped as `\u00e9` belongs to it. No `[`, so placeholders
/// stay put.
macro_rules! bare_value {
    () => {
        concat!(r#"((?:[^\s"'&,;\[\]\\]|\\+[^\s"'&,;\[\]\\nrtbfu]|"#, escaped_non_ascii!(), ")+)")
    };
}

/// The keys a password follows, one list for each form the value takes (quoted, after `=`,
/// after `:`).
macro_rules! password_key {
    () => {
        "(?:password|passwd|passwort|passphrase|pwd)"
    };
}

/// Detectors in priority order: when two matches start at the same place
/// and have the same length, the earlier detector names it.
pub(super) const DETECTORS: &[Detector] = &[
    Detector {
        kind: PiiKind::Jwt,
        pattern: r"(?-u:\b)eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        group: 0,
        numeric: false,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::ApiKey,
        // GitLab tokens may end in `-`, after which there is no word boundary;
        // their newer, routable form goes on after a dot.
        pattern: concat!(
            r"(?-u:\b)(?:(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|A[KS]IA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}",
            r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|github_pat_[A-Za-z0-9_]{30,}|xox[baprs]-[A-Za-z0-9-]{10,}",
            r"|hf_[A-Za-z0-9]{30,}|gsk_[A-Za-z0-9]{40,}|xai-[A-Za-z0-9]{40,}|pplx-[A-Za-z0-9]{40,}",
            r"|r8_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,})(?-u:\b)",
            // Google OAuth access tokens, like GitLab's, may end in `-`.
            r"|ya29\.[A-Za-z0-9_-]{20,}|glpat-[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9]+)?)"
        ),
        group: 0,
        numeric: false,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::ApiKey,
        // `_` may precede the key, as in environment variables (`OPENAI_API_KEY=`,
        // `AWS_SECRET_ACCESS_KEY=`).
        pattern: concat!(
            r#"(?i)(?:(?-u:\b)|_)(?:x-)?(?:api[_-]?key|api[_-]?token|secret[_-]?key|access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret|subscription[_-]?key|account[_-]?key|sas[_-]?token)"#,
            quote!(),
            r"?\s*[:=]\s*",
            quote!(),
            r"?([A-Za-z0-9_\-.~+/=]{8,})"
        ),
        group: 1,
        numeric: false,
        extent: Extent::Checked(secret_value),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::ApiKey,
        // Google keys may end in `-`, after which there is no word boundary.
        pattern: r"(?-u:\b)AIza[0-9A-Za-z_-]{35}",
        group: 0,
        numeric: false,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Password,
        // A quoted value is the password up to its closing quote, spaces
        // included, however JSON escaped the quotes: the capture is the
        // opening quote, and `quoted_value` finds the closing one, past the
        // quotes and backslashes escaped inside. `_` may precede the key
        // (`db_password`), and so may `\u0022`, which glues it to a digit.
        // Code in a prompt compares as often as it assigns (`password ==
        // "..."`, `!==`), and the literal is as secret either way. So is a
        // number (`"password": 1234`), which no other detector reads after a
        // key's closing quote, and which JSON keeps only if its mask is quoted.
        pattern: concat!(
            r"(?i)(?:(?-u:\b)|_|\\+u0022)",
            password_key!(),
            quote!(),
            r"?\s*(?::|[!=]?={1,2})\s*-?(",
            quote!(),
            r"|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?-u:\b))"
        ),
        group: 1,
        numeric: false,
        extent: Extent::Literal,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Password,
        // After `=` (or `==`, `!=`) any word is the password.
        pattern: concat!(r"(?i)(?:(?-u:\b)|_)", password_key!(), r"\s*[!=]?={1,2}\s*", bare_value!()),
        group: 1,
        numeric: false,
        extent: Extent::Checked(password_value),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Password,
        // A bare value after a colon may be prose ("password: click the link").
        pattern: concat!(r"(?i)(?:(?-u:\b)|_)", password_key!(), r"\s*:\s*", bare_value!()),
        group: 1,
        numeric: false,
        extent: Extent::Checked(password_like),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Password,
        // The password of a URL's credentials (`postgres://admin:S3cr3t!@db.example.com`,
        // `redis://:pw@cache`): up to the last `@` before the host, since producers leave an `@`
        // in a password unescaped. The user name and the host stay.
        pattern: r#"(?i)(?-u:\b)[a-z][a-z0-9+.-]{1,20}://[^\s:/@"'<>]*:([^\s/"'<>]+)@[^\s@/"'<>]"#,
        group: 1,
        numeric: false,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::PrivateKey,
        // A PEM private key (PKCS#1, PKCS#8, OpenSSH, encrypted), often inside a service
        // account's JSON: the whole block, see `pem_block`.
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        group: 0,
        numeric: false,
        extent: Extent::PemBlock,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Password,
        pattern: concat!(
            r"(?i)authorization",
            quote!(),
            r"?\s*[:=]\s*",
            quote!(),
            r"?basic\s+([A-Za-z0-9+/]{4,}={0,2})"
        ),
        group: 1,
        numeric: false,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::BearerToken,
        // `Token` is a word of prose too ("cost per token 0.000002"): only an
        // `Authorization` header says that what follows it is a secret.
        pattern: concat!(
            r"(?i:bearer|authorization",
            quote!(),
            r"?\s*[:=]\s*",
            quote!(),
            r"?token)\s+([A-Za-z0-9\-._~+/]{8,}=*)"
        ),
        group: 1,
        numeric: false,
        extent: Extent::Checked(token_like),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Email,
        // Domains may be internationalised (`müller.de`), as may the local
        // part. Raw JSON (a cut dead letter, or nested deeper than the decoded
        // walk reaches) may spell `@` as `\u0040`, `+` as `\u002B`, `.` as
        // `\u002e` and a non-ASCII letter as `\u00fc`; the escape view blanks
        // those, so only this pattern, on the raw text, can see them. A URL
        // spells `@` as `%40` (`mailto:jane%40example.com`). An apostrophe
        // belongs to the local part (`o'brien`) only between its characters,
        // so the quotes around `'jane@example.com'` stay outside the match.
        pattern: concat!(
            r"(?:[._%+-]|\\+u002[bB]|",
            address_char!(),
            r")+(?:'(?:[._%+-]|\\+u002[bB]|",
            address_char!(),
            r")+)*(?:@|\\+u0040|%40)",
            domain_label!(),
            "(?:",
            dot!(),
            domain_label!(),
            ")*",
            dot!(),
            r"(?:\p{L}|",
            escaped_non_ascii!(),
            "){2,}"
        ),
        group: 0,
        numeric: false,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Iban,
        // Lower-case hex ids (trace ids, hashes) have the shape and pass the checksum one time
        // in 97, so lower case counts only grouped (`de89 3704 ...`), which ids are not, and
        // `iban` wants digits in all groups but one there, which prose is not.
        pattern: concat!(
            r"(?-u:\b)(?:[A-Z]{2}[0-9]{2}(?:(?:[ -]| {2,3})?[A-Z0-9]{4}){2,7}(?:(?:[ -]| {2,3})?[A-Z0-9]{1,3})?",
            r"|[a-z]{2}[0-9]{2}(?:(?:[ -]| {2,3})[a-z0-9]{4}){2,7}(?:(?:[ -]| {2,3})[a-z0-9]{1,3})?)(?-u:\b)"
        ),
        group: 0,
        numeric: false,
        extent: Extent::Grouped(iban),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::CardNumber,
        pattern: r"(?-u:\b)[2-6](?:(?:[ .-]| {2,3})?[0-9]){12,18}(?-u:\b)",
        group: 0,
        numeric: true,
        extent: Extent::Grouped(card),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::NationalId,
        pattern: r"(?-u:\b)[0-9]{3}-[0-9]{2}-[0-9]{4}(?-u:\b)",
        group: 0,
        numeric: true,
        extent: Extent::Checked(ssn),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::NationalId,
        // Nine digits spaced or run together are an SSN only where the text says so;
        // anywhere else they are as likely an order number or an id. JSON may list them
        // (`"ssn":[...]`, behind other items: then the capture is the `[`).
        pattern: concat!(
            r#"(?i)(?:(?-u:\b)|_)(?:ssn|social[\s_-]*security)(?:[\s:#=."'\\_\[-]|number|num|no|nr|is|was)*"#,
            r"((?:[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}|[0-9]{9})(?-u:\b)|\[)"
        ),
        group: 1,
        numeric: true,
        extent: Extent::Listed(ssn),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::NationalId,
        // In one case throughout: `Ab123456c` is more likely an id than a NINO.
        pattern: concat!(
            r"(?-u:\b)(?:[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]",
            r"|[a-ceghj-pr-tw-z][a-ceghj-npr-tw-z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[a-d])(?-u:\b)"
        ),
        group: 0,
        numeric: false,
        extent: Extent::Checked(nino),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::IpAddress,
        // An address opens with a group at the start of a word, or with `::`. A
        // group may be empty only after that, or the match would open at a
        // label's colon (`ip:2001:db8::1`), or inside a label ending in a hex
        // digit (`id:fe80::1`), fail validation, and hide the address after it.
        // A label of hex letters alone (`db:`, `cafe:`) still opens it, and
        // `past_labels` looks past it.
        pattern: concat!(
            r"(?i)(?:(?-u:\b)[0-9a-f]{1,4}:(?:[0-9a-f]{0,4}:){1,6}|::(?:[0-9a-f]{0,4}:){0,5})",
            r"(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f]{1,4})?"
        ),
        group: 0,
        numeric: true,
        extent: Extent::PastLabels(ipv6),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::IpAddress,
        pattern: r"(?-u:\b)(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?-u:\b)",
        group: 0,
        numeric: true,
        extent: Extent::Capture,
        // Four-part version numbers look like addresses.
        not_after: &["version", "ver", "v"],
    },
    Detector {
        kind: PiiKind::Phone,
        pattern: r"\+[1-9][0-9]{0,2}(?:(?:[ .-]| {2,3})?\(?[0-9]{1,5}\)?){2,6}",
        group: 0,
        numeric: true,
        extent: Extent::Checked(international_phone),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Phone,
        pattern: r"(?:\([0-9]{3}\) ?|(?-u:\b)[0-9]{3}[-. ])[0-9]{3}[-. ][0-9]{4}(?-u:\b)",
        group: 0,
        numeric: true,
        extent: Extent::Capture,
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Phone,
        pattern: r"(?-u:\b)0[0-9]{2,4}(?:[ -]| {2,3})[0-9]{3,4}(?:[ -]| {2,3})?[0-9]{3,4}(?-u:\b)",
        group: 0,
        numeric: true,
        extent: Extent::Checked(national_phone),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Phone,
        // A bare run of 10 or 11 digits is a phone number only after a word that says so;
        // anywhere else it is an id, a count or a timestamp. JSON may list it (`"tel":[...]`,
        // behind other items: then the capture is the `[`), or write it as a float
        // (`4155552671.0`, `4155552671e0`, `4.155552671E9`).
        pattern: concat!(
            r#"(?i)(?:(?-u:\b)|_)(?:(?:tele|cell|mobile)?phones?|tel|mobile|cell|call)"#,
            r#"(?:[\s:#=."'\\_\[-]|numbers?|num|no|nr|is|me|us|at|on)*"#,
            r"((?:[0-9]{10,11}(?:\.0+)?(?:[eE]\+?0+)?|[0-9]{1,11}\.[0-9]{1,11}[eE]\+?[0-9]{1,2})(?-u:\b)|\[)"
        ),
        group: 1,
        numeric: true,
        extent: Extent::Listed(bare_phone),
        not_after: &[],
    },
    Detector {
        kind: PiiKind::Phone,
        // National numbers in pairs, as France and others write them (`06 12 34 56 78`), one
        // separator throughout, so `05.06.24 12.30` (a date and a time) is left alone.
        pattern: r"(?-u:\b)0[1-9](?:(?: {1,3}[0-9]{2}){4}|(?:\.[0-9]{2}){4}|(?:-[0-9]{2}){4})(?-u:\b)",
        group: 0,
        numeric: true,
        extent: Extent::Checked(paired_phone),
        not_after: &[],
    },
];
