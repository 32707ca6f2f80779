//! Allocation-free parsing of the timestamps FastF1 writes.

/// Parses `YYYY-MM-DD[T| ]HH:MM:SS[.fraction][Z|±00:00]` (UTC) into epoch milliseconds,
/// truncating the fraction to the millisecond. The date must be on the calendar (no
/// February 30th) and the second 0..=59: epoch milliseconds have no leap second.
pub fn parse_utc_ms(s: &[u8]) -> Option<i64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if s[10] != b'T' && s[10] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        s[r].iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as i64)
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10
                + frac
                    .get(i)
                    .filter(|_| i < digits)
                    .map_or(0, |&b| (b - b'0') as i64);
        }
        rest = &frac[digits..];
    }
    match rest {
        b"" | b"Z" | b"+00:00" | b"+0000" => {}
        _ => return None,
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch ms as `2023-05-28T13:01:02.424Z`.
pub fn format_utc_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// Parses pandas' timedelta text, `0 days 01:02:03.450000` (or `1 day ...`, or the clock
/// alone), or plain seconds, `12.5`, into ms, truncating to the millisecond. A duration here is
/// never negative: signs are refused, and so are a clock's minutes or seconds past 59 and a
/// value past what an i64 of ms holds.
pub fn parse_timedelta_ms(s: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(s).ok()?.trim();
    let (days, clock) = match text
        .split_once(" days ")
        .or_else(|| text.split_once(" day "))
    {
        Some((d, c)) => (digits(d.trim())?, c.trim()),
        None => (0, text),
    };
    let mut parts = clock.split(':');
    let (hours, minutes, seconds_ms) =
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(m), Some(s), None) => {
                let (m, s) = (digits(m)?, seconds_ms(s)?);
                if m > 59 || s >= 60_000 {
                    return None;
                }
                (digits(h)?, m, s)
            }
            (Some(s), None, None, None) => (0, 0, seconds_ms(s)?),
            _ => return None,
        };
    days.checked_mul(24)?
        .checked_add(hours)?
        .checked_mul(60)?
        .checked_add(minutes)?
        .checked_mul(60_000)?
        .checked_add(seconds_ms)
}

/// A whole number written with digits only (no sign).
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `SS[.fraction]` as ms, the fraction truncated to the millisecond.
fn seconds_ms(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (frac.is_empty() && s.ends_with('.')) {
        return None;
    }
    let millis = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, b| acc * 10 + (b - b'0') as i64);
    digits(whole)?.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_fastf1_date_forms() {
        // 2023-05-28T13:01:02.424 UTC = 1685278862424 ms.
        assert_eq!(
            parse_utc_ms(b"2023-05-28T13:01:02.424"),
            Some(1_685_278_862_424)
        );
        assert_eq!(
            parse_utc_ms(b"2023-05-28 13:01:02.424020"),
            Some(1_685_278_862_424)
        );
        assert_eq!(
            parse_utc_ms(b"2023-05-28 13:01:02.999999Z"),
            Some(1_685_278_862_999)
        );
        assert_eq!(
            parse_utc_ms(b"2023-05-28T13:01:02+00:00"),
            Some(1_685_278_862_000)
        );
        assert_eq!(parse_utc_ms(b"1970-01-01T00:00:00.5"), Some(500));
        assert_eq!(
            parse_utc_ms(b"2024-02-29T00:00:00"),
            Some(1_709_164_800_000)
        );
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            &b""[..],
            b"2023-05-28",
            b"2023-13-28T13:01:02",
            b"2023-05-28X13:01:02",
            b"2023-05-28T13:01:02.",
            b"2023-05-28T13:01:02+02:00",
            b"abcd-05-28T13:01:02",
        ] {
            assert_eq!(
                parse_utc_ms(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_dates_not_on_the_calendar() {
        // Found by the `times` fuzz target: these parsed, as the day or minute after.
        for bad in [
            "2023-02-31T13:01:02",
            "2023-02-29T00:00:00",
            "2024-02-30T00:00:00",
            "1900-02-29T00:00:00",
            "2023-04-31T00:00:00",
            "2023-11-31 00:00:00",
            "2023-05-28T13:01:60",
            "2023-12-31T23:59:60.500Z",
            "2023-05-00T13:01:02",
        ] {
            assert_eq!(parse_utc_ms(bad.as_bytes()), None, "{bad}");
        }
        for good in [
            "2024-02-29T00:00:00",
            "2000-02-29T00:00:00",
            "2023-01-31T00:00:00",
            "2023-04-30T23:59:59.999",
            "2023-12-31T23:59:59",
        ] {
            let ms = parse_utc_ms(good.as_bytes()).unwrap_or_else(|| panic!("{good}"));
            assert_eq!(format_utc_ms(ms)[..19], good[..19], "{good}");
        }
    }

    #[test]
    fn timedeltas_are_never_negative_and_never_overflow() {
        // Found by the `times` fuzz target: signs were taken (a negative chunk time), and
        // a huge day or hour count overflowed (a panic in a debug build, garbage in release).
        for bad in [
            "-3:01:82",
            "-1 days 00:00:00",
            "-1 days +23:59:59",
            "+5",
            "-0.5",
            "0 days 00:61:00",
            "0 days 00:00:60",
            "0 days -1:00:00",
            "1:3168788688688886:87",
            "99999999999999999 days 00:00:00",
            "1211203111151610101 day 01:00:00",
            "9223372036854775807",
            "1e3",
            "inf",
            "NaN",
            "1.",
            ".5",
            "0 days 00:00:01.95x",
        ] {
            assert_eq!(parse_timedelta_ms(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_timedelta_ms(b"0 days 00:00:59.999999"), Some(59_999));
        assert_eq!(parse_timedelta_ms(b"01:02:03.5"), Some(3_723_500));
        assert_eq!(parse_timedelta_ms(b"2 day 00:00:00"), Some(172_800_000));
        assert_eq!(parse_timedelta_ms(b"0.001"), Some(1));
    }

    #[test]
    fn formats_back_what_it_parses() {
        for text in [
            "2023-05-28T13:01:02.424Z",
            "1970-01-01T00:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
        ] {
            let ms = parse_utc_ms(text.as_bytes()).unwrap();
            assert_eq!(format_utc_ms(ms), text);
        }
    }

    #[test]
    fn parses_pandas_timedeltas() {
        assert_eq!(parse_timedelta_ms(b"0 days 00:00:01.957000"), Some(1957));
        assert_eq!(
            parse_timedelta_ms(b"0 days 01:03:27.435000"),
            Some(3_807_435)
        );
        assert_eq!(parse_timedelta_ms(b"1 days 00:00:00"), Some(86_400_000));
        assert_eq!(parse_timedelta_ms(b"12.5"), Some(12_500));
        assert_eq!(parse_timedelta_ms(b""), None);
        assert_eq!(parse_timedelta_ms(b"soon"), None);
    }
}
