//! Span validators: the second look a detector's match gets before it is
//! scrubbed.
//!
//! A pattern only says that a span has the shape of PII, and order ids,
//! timestamps, trace ids, version numbers and counts share that shape with
//! card numbers, phone numbers, IBANs and SSNs. Each validator checks what a
//! pattern cannot: a checksum (Luhn for cards, mod-97 for IBANs), numbers that
//! are never issued (SSN areas, NINO prefixes), a real parse (IPv6), digit
//! counts and grouping (phones), or signs that a value is a secret rather
//! than prose (passwords, API keys, bearer tokens). Each returns the length of
//! the prefix that really is PII, as a pattern may swallow a trailing word,
//! or `None` to drop the match.

/// A password given after `=`: anything up to a sentence's full stop.
pub(super) fn password_value(value: &str) -> Option<usize> {
    // A value that starts with `=` is the rest of a comparison (`password == "..."`), whose
    // quoted literal the quoted-value detector masks.
    if value.starts_with('=') {
        return None;
    }
    let trimmed = value.trim_end_matches('.');
    (!trimmed.is_empty()).then_some(trimmed.len())
}

/// A bare password after a colon must not look like a word of prose: it has a
/// digit or a symbol, or is too long for one.
pub(super) fn password_like(value: &str) -> Option<usize> {
    let len = password_value(value)?;
    let value = &value[..len];
    let marked = value.bytes().any(|b| !b.is_ascii_alphabetic());
    (marked || len >= 16).then_some(len)
}

/// A secret value ends before a sentence's full stop.
pub(super) fn secret_value(value: &str) -> Option<usize> {
    let trimmed = value.trim_end_matches('.');
    (trimmed.len() >= 8).then_some(trimmed.len())
}

/// Bearer tokens look random: long, or carrying digits or symbols (so "bearer instruments" stays).
pub(super) fn token_like(token: &str) -> Option<usize> {
    let len = secret_value(token)?;
    let token = &token[..len];
    let marked = token.bytes().any(|b| b.is_ascii_digit() || b"-._~+/=".contains(&b));
    (token.len() >= 20 || marked).then_some(len)
}

/// Luhn check over the digits of a 13–19 digit card candidate, which must
/// be ungrouped or grouped the way cards are printed (4-4-4-4, 4-4-4-4-3,
/// 4-6-5), so bank codes and other grouped numbers are not taken for cards.
/// Groups are split by spaces (one to three: the escape view shows a Unicode
/// space as two or three) or dashes, or by dots throughout: a dot among other
/// separators is more likely a decimal point.
pub(super) fn card(candidate: &str) -> Option<usize> {
    let groups: Vec<usize> =
        candidate.split(|c: char| !c.is_ascii_digit()).filter(|g| !g.is_empty()).map(str::len).collect();
    let mut separators = candidate.split(|c: char| c.is_ascii_digit()).filter(|s| !s.is_empty());
    if candidate.contains('.') && !separators.all(|s| s == ".") {
        return None;
    }
    let printed = match groups.as_slice() {
        [_] | [4, 6, 4 | 5] => true,
        [init @ .., last] => init.iter().all(|&g| g == 4) && (3..=4).contains(last),
        [] => false,
    };
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !printed || !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return None;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2 == 1, d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => d,
        })
        .sum();
    sum.is_multiple_of(10).then_some(candidate.len())
}

/// IBAN mod-97 check; retries without trailing space-separated groups, which
/// the pattern may have taken from the following words.
pub(super) fn iban(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        if iban_valid(&candidate[..end]) && lower_case_plausible(&candidate[..end]) {
            return Some(end);
        }
        end = candidate[..end].rfind([' ', '-'])?;
    }
}

/// An IBAN in lower case has digits in every group after the first but one
/// (a bank code such as `west`): grouped prose (`xx12 then turn left`) has
/// words there.
fn lower_case_plausible(text: &str) -> bool {
    if !text.bytes().any(|b| b.is_ascii_lowercase()) {
        return true;
    }
    let wordlike = text
        .split([' ', '-'])
        .skip(1)
        .filter(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_alphabetic()))
        .count();
    wordlike <= 1
}

/// The mod-97 check of an IBAN in either case, spaced or dashed.
pub(super) fn iban_valid(text: &str) -> bool {
    let compact: Vec<u8> = text.bytes().filter(|b| *b != b' ' && *b != b'-').map(|b| b.to_ascii_uppercase()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder = 0u32;
    for &b in tail.iter().chain(head) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

/// A number in pairs is not a count (`01 02 03 04 05`): its pairs do not each go up by one.
pub(super) fn paired_phone(candidate: &str) -> Option<usize> {
    let pairs: Vec<u32> = candidate.split([' ', '.', '-']).filter_map(|pair| pair.parse().ok()).collect();
    let counting = pairs.windows(2).all(|two| two[1] == two[0] + 1);
    (!counting).then_some(candidate.len())
}

/// US SSN, written `123-45-6789`, `123 45 6789` or `123456789` (an item of a
/// list is read without a pattern to say so): areas 000, 666 and 900–999,
/// group 00 and serial 0000 are never issued.
pub(super) fn ssn(candidate: &str) -> Option<usize> {
    let groups: Vec<usize> = candidate.split([' ', '-']).map(str::len).collect();
    let digits: String = candidate.chars().filter(char::is_ascii_digit).collect();
    let written = matches!(groups.as_slice(), [3, 2, 4] | [9]) && digits.len() == 9;
    let one_separator = !(candidate.contains(' ') && candidate.contains('-'));
    if !written || !one_separator {
        return None;
    }
    let (area, rest) = digits.split_at(3);
    let (group, serial) = rest.split_at(2);
    let valid = area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000";
    valid.then_some(candidate.len())
}

/// UK NINO: some prefixes are never allocated.
pub(super) fn nino(candidate: &str) -> Option<usize> {
    let prefix = candidate.get(..2)?.to_ascii_uppercase();
    let excluded = ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"].contains(&prefix.as_str());
    (!excluded).then_some(candidate.len())
}

/// Accepts what the standard library parses as IPv6 (trailing colons
/// trimmed), with a digit and at least three groups, so `a::b`-style code
/// paths and clock times are left alone.
pub(super) fn ipv6(candidate: &str) -> Option<usize> {
    let trimmed = candidate.trim_end_matches(':');
    let groups = trimmed.split(':').filter(|g| !g.is_empty()).count();
    let plausible = groups >= 3 || (trimmed.contains("::") && groups >= 2);
    let parsed = trimmed.parse::<std::net::Ipv6Addr>().is_ok();
    (plausible && parsed && trimmed.bytes().any(|b| b.is_ascii_digit())).then_some(trimmed.len())
}

/// E.164 numbers have 8 to 15 digits including the country code.
pub(super) fn international_phone(candidate: &str) -> Option<usize> {
    let mut trimmed = candidate.trim_end_matches([' ', '.', '-', '(']);
    // The pattern takes a `)` after the last digits; keep it only when it closes an area code.
    if trimmed.ends_with(')') && trimmed.matches(')').count() > trimmed.matches('(').count() {
        trimmed = &trimmed[..trimmed.len() - 1];
    }
    let digits = trimmed.bytes().filter(u8::is_ascii_digit).count();
    (8..=15).contains(&digits).then_some(trimmed.len())
}

/// A bare run after a phone word: 10 digits (a North American number, or a
/// national one with its trunk `0`) or 11, maybe written as a JSON float
/// (`4155552671.0`, `4155552671e0`) or in scientific notation, as Java and
/// Jackson write a double (`4.155552671E9`), as long as it is a whole number.
/// Ten digits starting with `1` are left alone: no such number exists, and
/// epoch seconds (`call at 1718000000`, `1.718e9`) look just like that.
pub(super) fn bare_phone(number: &str) -> Option<usize> {
    let (mantissa, exponent) = match number.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<usize>().ok()?),
        None => (number, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, "0"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // A whole number only when the exponent moves every digit that is not a
    // trailing zero in front of the point.
    if fraction.trim_end_matches('0').len() > exponent {
        return None;
    }
    let digits = whole.len().saturating_add(exponent);
    ((10..=11).contains(&digits) && (digits == 11 || !number.starts_with('1'))).then_some(number.len())
}

/// National numbers with a trunk `0` have 10 or 11 digits.
pub(super) fn national_phone(candidate: &str) -> Option<usize> {
    let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
    (10..=11).contains(&digits).then_some(candidate.len())
}
