//! The storage limits the host enforces on plugins, shared with the in-memory test host so
//! a plugin tested natively meets the same walls it meets in the gateway.

/// Keys are 1 to this many bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// A scan returns at most this many entries, whatever it asks for.
pub const MAX_SCAN_ENTRIES: usize = 1000;
/// A scan whose entries (keys and values) would exceed this many bytes is refused with
/// `invalid`, before the host holds them all; the SDK then asks for fewer entries. Without
/// it, one scan of 1000 one-MiB values would make the host allocate 1 GiB.
pub const MAX_SCAN_BYTES: usize = 4 << 20;
/// Default of `limits.max_value_bytes`: the largest value under one key.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1 << 20;
/// Default of `limits.max_write_bytes`: the most one atomic write may carry (keys and
/// values), however many operations it holds.
pub const DEFAULT_MAX_WRITE_BYTES: usize = 16 << 20;

/// The message of a scan refused for its size; the SDK recognises it.
pub const SCAN_TOO_LARGE: &str = "scan result is larger than the host returns at once";

/// Starts the message of a storage write refused by the organization's stored-bytes
/// quota; the SDK answers it as 409 with `details.reason = quota_exceeded`.
pub const QUOTA_EXCEEDED: &str = "quota: ";
