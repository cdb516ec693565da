//! ABI version: the version macros of `moq_ffi.h` and `moq_abi_version`, which lets an
//! application refuse a library it was not built for.
//!
//! The constants below are emitted into the header by cbindgen as `#define`s. They are literals
//! (cbindgen cannot evaluate `env!`), so a compile-time assertion ties each one to Cargo.toml's
//! `version`: bumping the crate version without updating them fails the build.

use super::boundary::enter;

/// Major version of the moq-ffi release this header belongs to (Cargo.toml `version`).
pub const MOQ_FFI_VERSION_MAJOR: u32 = 0;

/// Minor version of the moq-ffi release this header belongs to (Cargo.toml `version`).
pub const MOQ_FFI_VERSION_MINOR: u32 = 2;

/// Patch version of the moq-ffi release this header belongs to (Cargo.toml `version`).
pub const MOQ_FFI_VERSION_PATCH: u32 = 0;

/// The header's version packed as `(MAJOR << 16) | (MINOR << 8) | PATCH`, the same encoding
/// `moq_abi_version()` returns for the library. Compare them with `MOQ_FFI_ABI_COMPATIBLE`.
pub const MOQ_FFI_ABI_VERSION: u32 = 0x000200;

/// Parses a decimal `CARGO_PKG_VERSION_*` component at compile time.
const fn parse_component(text: &str) -> u32 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "empty version component");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(digit.is_ascii_digit(), "version component is not a decimal number");
        value = value * 10 + (digit - b'0') as u32;
        i += 1;
    }
    value
}

const CARGO_MAJOR: u32 = parse_component(env!("CARGO_PKG_VERSION_MAJOR"));
const CARGO_MINOR: u32 = parse_component(env!("CARGO_PKG_VERSION_MINOR"));
const CARGO_PATCH: u32 = parse_component(env!("CARGO_PKG_VERSION_PATCH"));

// The header macros must describe the crate they are generated from: update the constants above
// (and run scripts/gen-header.sh) whenever Cargo.toml's version changes.
const _: () = assert!(
    MOQ_FFI_VERSION_MAJOR == CARGO_MAJOR,
    "MOQ_FFI_VERSION_MAJOR != Cargo.toml version"
);
const _: () = assert!(
    MOQ_FFI_VERSION_MINOR == CARGO_MINOR,
    "MOQ_FFI_VERSION_MINOR != Cargo.toml version"
);
const _: () = assert!(
    MOQ_FFI_VERSION_PATCH == CARGO_PATCH,
    "MOQ_FFI_VERSION_PATCH != Cargo.toml version"
);
const _: () = assert!(
    CARGO_MINOR < 256 && CARGO_PATCH < 256,
    "version does not fit the packed encoding"
);
const _: () = assert!(
    MOQ_FFI_ABI_VERSION == (CARGO_MAJOR << 16) | (CARGO_MINOR << 8) | CARGO_PATCH,
    "MOQ_FFI_ABI_VERSION != packed Cargo.toml version"
);

/// The version of the loaded library, packed as `(MAJOR << 16) | (MINOR << 8) | PATCH` like the
/// header's `MOQ_FFI_ABI_VERSION`.
///
/// An application compares it with the header it was compiled against:
/// `MOQ_FFI_ABI_COMPATIBLE(moq_abi_version())` is true when the library can serve it (same ABI
/// line: same major version, and for 0.x releases the same minor version; and the library is
/// not older than the header). Returns 0 only if the call itself failed (cannot happen in
/// practice). Thread-safe, never blocks, needs no initialisation.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_abi_version() -> u32 {
    let mut version = 0;
    enter("moq_abi_version", || {
        version = MOQ_FFI_ABI_VERSION;
        Ok(())
    });
    version
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macros_match_cargo_version() {
        let text = format!("{MOQ_FFI_VERSION_MAJOR}.{MOQ_FFI_VERSION_MINOR}.{MOQ_FFI_VERSION_PATCH}");
        let cargo = env!("CARGO_PKG_VERSION");
        // Pre-release/build suffixes (e.g. 0.3.0-rc.1) are not part of the macros.
        let base = cargo.split(['-', '+']).next().unwrap_or(cargo);
        assert_eq!(text, base);
        assert_eq!(moq_abi_version(), MOQ_FFI_ABI_VERSION);
        assert_eq!(
            moq_abi_version(),
            (MOQ_FFI_VERSION_MAJOR << 16) | (MOQ_FFI_VERSION_MINOR << 8) | MOQ_FFI_VERSION_PATCH
        );
    }
}
