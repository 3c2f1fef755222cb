//! `weir credentials`: the S3 keys and the API token, for a shell or an AWS CLI profile.
//!
//! Resolved as `weir run` resolves them (environment, config, else `<data dir>/credentials.toml`),
//! and printed on request only: this is the one place secrets are shown. A data dir that does not
//! exist is refused (nothing has run there; new keys would match no instance). The endpoint goes
//! into `AWS_ENDPOINT_URL_S3`, so the shell's other AWS calls (SQS, `weir setup aws`) keep going
//! to AWS. The
//! endpoint is the one `weir run` last wrote to `<data dir>/endpoints.json`, else the configured one;
//! a comment line gives the dashboard's sign-in link.

use anyhow::{bail, Result};
use weir_server::Credentials;

use crate::cli::{CredentialsArgs, Global};
use crate::config;

pub async fn run(global: &Global, args: CredentialsArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    if !loaded.data_dir.is_dir() {
        bail!(
            "there is no weir data dir at {}: nothing has run there, so there are no keys to print; start `weir run` (it creates them) or pass the --data-dir of a running instance",
            loaded.data_dir.display()
        );
    }
    let config = crate::secrets::at_start(&loaded).await?;
    let server = &config.server;
    let c = Credentials::resolve(server, &loaded.data_dir, |name| std::env::var(name).ok())?;
    // Where a running (or the last) `weir run` on this data dir listens, else the configured address.
    let endpoints = std::fs::read(loaded.data_dir.join("endpoints.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let running = |name: &str| endpoints.as_ref().and_then(|e| e[name].as_str().map(str::to_owned));
    let scheme = if server.tls_cert.is_some() { "https" } else { "http" };
    let configured = |listen: &str| {
        (!listen.is_empty()).then(|| format!("{scheme}://{}", listen.replace("0.0.0.0", "127.0.0.1")))
    };
    let endpoint = running("s3").or_else(|| configured(&server.s3_listen));
    let api = running("api").or_else(|| configured(&server.api_listen));
    let secret = c.secret_access_key.expose();
    match args.profile {
        Some(profile) => {
            outln!("aws configure set aws_access_key_id {} --profile {profile}", c.access_key_id)?;
            outln!("aws configure set aws_secret_access_key {secret} --profile {profile}")?;
            outln!("aws configure set region us-east-1 --profile {profile}")?;
            if let Some(url) = &endpoint {
                outln!("aws configure set endpoint_url {url} --profile {profile}")?;
            }
        }
        None => {
            outln!("export AWS_ACCESS_KEY_ID={}", c.access_key_id)?;
            outln!("export AWS_SECRET_ACCESS_KEY={secret}")?;
            outln!("export AWS_DEFAULT_REGION=us-east-1")?;
            if let Some(url) = &endpoint {
                // S3 only: AWS_ENDPOINT_URL would send every service (SQS, SNS, DynamoDB, and so
                // `weir setup aws`) to weir's S3 endpoint too.
                outln!("export AWS_ENDPOINT_URL_S3={url}")?;
            }
            outln!("# these keys replace your AWS keys in this shell (S3 calls go to weir); `weir credentials --profile weir` prints an AWS CLI profile instead, used with --profile weir")?;
            outln!("export WEIR_API_TOKEN={}", c.api_token.expose())?;
            if let Some(url) = &api {
                // Opened once, this signs the browser in and the token leaves the address bar.
                outln!("# the dashboard: {url}/?token={}", c.api_token.expose())?;
            }
        }
    }
    Ok(0)
}
