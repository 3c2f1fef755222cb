//! The rule for a file that holds a secret (`credentials.toml`, a `weir.toml` with keys, a
//! database URL file): readable by weir's user only, and owned by it. The callers read the
//! file's mode and owner; the rule and its advice live here, so every such file is held to
//! the same one.

use std::path::Path;

/// Why a file with permission bits `mode`, owned by uid `owner`, is not private to uid `us`,
/// with the command that fixes it.
pub fn check_mode_and_owner(path: &Path, mode: u32, owner: u32, us: u32) -> Result<(), String> {
    if mode & 0o077 != 0 {
        return Err(format!("readable by others (mode {mode:o}); run `chmod 600 {}`", path.display()));
    }
    if owner != us {
        return Err(format!(
            "owned by another user (uid {owner}, weir runs as uid {us}), who can change it; run `chown {us} {}` and `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_private_to_weirs_user() {
        let p = Path::new("/x/weir.toml");
        assert!(check_mode_and_owner(p, 0o600, 1000, 1000).is_ok());
        assert!(check_mode_and_owner(p, 0o400, 1000, 1000).is_ok());
        assert!(check_mode_and_owner(p, 0o640, 1000, 1000).unwrap_err().contains("chmod 600 /x/weir.toml"));
        assert!(check_mode_and_owner(p, 0o604, 1000, 1000).unwrap_err().contains("mode 604"));
        let e = check_mode_and_owner(p, 0o600, 0, 1000).unwrap_err();
        assert!(e.contains("owned by another user (uid 0") && e.contains("chown 1000"), "{e}");
    }
}
