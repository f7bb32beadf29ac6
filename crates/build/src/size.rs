//! Byte sizes as people write them: `500MB`, `1GB`, `10MiB`, `1000`.

/// A size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a size: write bytes (1000000), or a number with B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)")]
pub struct ParseSizeError {
    input: String,
}

/// Parses a size: plain bytes, or a number (decimals allowed) with a unit. `KB`, `MB`, `GB` are
/// powers of 1000, as the API documents its limits ("1 GB", "10 MB"); `KiB`, `MiB`, `GiB` are
/// powers of 1024. Units are case-insensitive; a space before the unit is allowed.
///
/// ```
/// use sailbulk_build::parse_size;
/// assert_eq!(parse_size("500MB"), Ok(500_000_000));
/// assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
/// assert_eq!(parse_size("1.5 kb"), Ok(1500));
/// assert_eq!(parse_size("64MiB"), Ok(64 << 20));
/// assert_eq!(parse_size("1000"), Ok(1000));
/// assert!(parse_size("ten").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, ParseSizeError> {
    let err = || ParseSizeError {
        input: input.to_string(),
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(err()),
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(err());
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') {
        return Err(err());
    }
    let whole: u64 = whole.parse().map_err(|_| err())?;
    let mut bytes = whole.checked_mul(factor).ok_or_else(err)?;
    if !frac.is_empty() {
        // Exact arithmetic on the fraction: "1.5" KB is 1500 bytes, never 1499.
        let digits = u32::try_from(frac.len()).map_err(|_| err())?;
        let scale = 10u64.checked_pow(digits).ok_or_else(err)?;
        let frac: u64 = frac.parse().map_err(|_| err())?;
        bytes = bytes
            .checked_add(frac.checked_mul(factor).ok_or_else(err)? / scale)
            .ok_or_else(err)?;
    }
    if bytes == 0 {
        return Err(err());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1"), Ok(1));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("10 mb"), Ok(10_000_000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2kib"), Ok(2048));
        assert_eq!(parse_size("0.5GB"), Ok(500_000_000));
        for bad in [
            "",
            "0",
            "MB",
            "1.2.3MB",
            "1TB",
            "-1",
            "1.",
            ".5MB",
            "99999999999999999999GB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
