//! The memory grant (`limits.memoryMiB`) as a store limiter: all the store's linear memories
//! and tables together stay within it.

use wasmtime::ResourceLimiter;

/// Table elements a plugin may use (function references; Rust components need a few hundred).
pub(crate) const MAX_TABLE_ELEMENTS: usize = 20_000;

/// What one table element costs against `memoryMiB`: the host stores a function reference as one
/// 8-byte pointer. Counting tables makes a guest that grows a table instead of a memory pay too.
const TABLE_ELEMENT_BYTES: usize = 8;

/// The memory grant: all the store's linear memories and tables together stay within
/// `memoryMiB`; growth past it fails the run, and the limiter remembers the size it asked for.
pub(crate) struct Limiter {
    limit: usize,
    /// Bytes of every memory and table so far (tables at [`TABLE_ELEMENT_BYTES`] an element).
    used: usize,
    /// The total a refused growth asked for, once one was refused.
    pub(crate) exceeded: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded")]
struct MemoryExceeded;

impl Limiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            exceeded: None,
        }
    }

    /// One memory or table grows from `current` to `desired` bytes (from 0 when created).
    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.exceeded = Some(total);
            return Err(wasmtime::Error::new(MemoryExceeded));
        }
        self.used = total;
        Ok(true)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn memories_and_tables_count_together_against_the_limit() {
        let mut limiter = Limiter::new(4 * MIB);
        // Two memories created at 1 MiB each, then one grows to 2 MiB: 3 MiB in all.
        assert!(limiter.memory_growing(0, MIB, None).unwrap());
        assert!(limiter.memory_growing(0, MIB, None).unwrap());
        assert!(limiter.memory_growing(MIB, 2 * MIB, None).unwrap());
        assert_eq!(limiter.used, 3 * MIB);
        // A table of 16 Ki elements costs 128 KiB: it still fits.
        assert!(limiter.table_growing(0, 16 << 10, None).unwrap());
        assert_eq!(limiter.used, 3 * MIB + 128 * 1024);
        // Growing the first memory by 1 MiB more would pass 4 MiB, though it alone is 2 MiB.
        assert!(limiter.memory_growing(MIB, 2 * MIB, None).is_err());
        assert_eq!(limiter.exceeded, Some(4 * MIB + 128 * 1024));
        assert_eq!(
            limiter.used,
            3 * MIB + 128 * 1024,
            "a refused growth is not counted"
        );
    }

    #[test]
    fn a_table_past_its_element_bound_is_refused_without_failing_the_run() {
        let mut limiter = Limiter::new(64 * MIB);
        assert!(
            !limiter
                .table_growing(0, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
        assert_eq!(limiter.exceeded, None);
        // Within the element bound but over `memoryMiB`: the run fails.
        let mut small = Limiter::new(64 << 10);
        assert!(small.table_growing(0, 8 * 1024 + 1, None).is_err());
        assert_eq!(small.exceeded, Some((64 << 10) + TABLE_ELEMENT_BYTES));
    }
}
