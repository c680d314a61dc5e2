//! Passwords for a table: hashed by the gateway in the scheme the application checks logins
//! with. The clear text lives only in the request; the hash goes to the configured column.

use crate::config::PasswordScheme;

/// bcrypt's work factor: ~250 ms on a server core, the usual default of applications.
const BCRYPT_COST: u32 = 12;

/// The stored form of `password` in `scheme`: an argon2id PHC string or a `$2b$` hash.
pub fn hash(scheme: PasswordScheme, password: &str) -> Result<String, String> {
    match scheme {
        PasswordScheme::Argon2 => {
            use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
            let salt = SaltString::generate(&mut OsRng);
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| e.to_string())
        }
        // bcrypt reads at most 72 bytes; longer passwords are refused rather than cut.
        PasswordScheme::Bcrypt => bcrypt::non_truncating_hash_with_result(password, BCRYPT_COST)
            .map(|h| h.format_for_version(bcrypt::Version::TwoB))
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};

    #[test]
    fn hashes_verify_in_their_scheme() {
        let h = hash(PasswordScheme::Argon2, "s3cret!").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(argon2::Argon2::default().verify_password(b"s3cret!", &PasswordHash::new(&h).unwrap()).is_ok());
        let h = hash(PasswordScheme::Bcrypt, "s3cret!").unwrap();
        assert!(h.starts_with("$2b$12$") && bcrypt::verify("s3cret!", &h).unwrap());
        assert!(hash(PasswordScheme::Bcrypt, &"x".repeat(73)).is_err(), "bcrypt would cut it");
    }
}
