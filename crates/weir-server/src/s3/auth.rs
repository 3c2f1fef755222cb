//! SigV4 (and SigV2) verification against the configured keys.
//!
//! s3s checks the signature, the payload hash and the clock skew; this module only answers which
//! secret belongs to an access key id. An unknown id is `InvalidAccessKeyId`, as on AWS; a wrong
//! secret surfaces as `SignatureDoesNotMatch`. Unsigned requests never get this far: with an
//! auth provider set, s3s's default access check refuses anonymous requests (`AccessDenied`).

use std::collections::HashMap;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

use crate::credentials::Credentials;

pub struct KeyAuth {
    keys: HashMap<String, SecretKey>,
}

impl KeyAuth {
    pub fn new(credentials: &Credentials) -> KeyAuth {
        let keys = HashMap::from([(
            credentials.access_key_id.clone(),
            SecretKey::from(credentials.secret_access_key.expose()),
        )]);
        KeyAuth { keys }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.get(access_key) {
            Some(secret) => Ok(secret.clone()),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS access key Id you provided does not exist in our records."
            )),
        }
    }
}
