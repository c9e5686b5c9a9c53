//! `[storage]`: how the database file is used.

use super::toml_reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageConfig {
    /// redb's own page cache in KiB (16..=1 048 576, so bytes fit a 32-bit
    /// usize). The kernel's page cache holds the file too, so this only
    /// saves system calls. Small on purpose: pages cached while a wave of
    /// clients logs in are long-lived blocks among the clients' short-lived
    /// ones, and with musl's allocator each such page kept up to 123 KiB
    /// of freed memory from going back to the kernel after they left (a
    /// 1 MiB cache: 15.4 MiB resident after 10 000 TLS clients came and
    /// left; 64 KiB: 6.0 MiB, for two more reads per login).
    pub cache_kib: usize,
}

impl StorageConfig {
    /// The cache size in bytes, as `store::Store::open` takes it.
    pub fn cache_bytes(&self) -> usize {
        self.cache_kib.saturating_mul(1 << 10)
    }

    /// Reads and checks the `[storage]` table; absent keys keep their defaults.
    pub(super) fn read(table: &mut TableReader<'_, '_>) -> StorageConfig {
        let defaults = StorageConfig::default();
        StorageConfig {
            cache_kib: table.optional_integer("cache_kib", 16..=1_048_576, defaults.cache_kib),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { cache_kib: 64 }
    }
}
