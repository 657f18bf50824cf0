//! Typing a key's text: booleans, durations, sizes, part sizes.

use std::time::Duration;

use crate::store::MIN_PART_SIZE;

pub(super) fn parse_part_size(v: &str) -> Result<u64, String> {
    let size = parse_size(v)?;
    if size < MIN_PART_SIZE {
        return Err(format!("`{v}` is below S3's minimum part size of 5MiB"));
    }
    if size > super::keys::MAX_PART_SIZE {
        return Err(format!("`{v}` is above S3's maximum part size of 5GiB"));
    }
    Ok(size)
}

pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("`{other}` is not `true` or `false`")),
    }
}

/// Parses `500ms`, `30s`, `15m`, `2h`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!("`{v}` is not a duration; write it like `500ms`, `30s`, `15m` or `2h`")
    })?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(format!(
                "`{v}` is not a duration; write it like `500ms`, `30s`, `15m` or `2h`"
            ));
        }
    };
    Ok(d)
}

/// Parses `8MiB`, `64KiB`, `1GiB`, `5MB` or a plain number of bytes.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{v}` is not a size; write it like `8MiB`"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(format!("`{v}` is not a size; write it like `8MiB`")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{v}` is too large"))
}
