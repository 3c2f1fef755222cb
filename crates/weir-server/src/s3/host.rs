//! Virtual-host-style addressing: `weir-input.localhost:9000/raw/x.csv` names bucket `weir-input`.
//!
//! s3s itself skips this for IP addresses (`127.0.0.1:9000` is always path style). For names, a
//! host under one of the configured domains carries the bucket; the bare domain, and any other
//! name (the machine's own host name, a proxy in front), is path style.

use std::borrow::Cow;

use s3s::host::{S3Host, VirtualHost};
use s3s::S3Result;

pub struct LocalDomains {
    domains: Vec<String>,
}

impl LocalDomains {
    pub fn new(domains: &[String]) -> LocalDomains {
        LocalDomains { domains: domains.iter().map(|d| d.trim_matches('.').to_ascii_lowercase()).collect() }
    }
}

impl LocalDomains {
    /// The bucket a `Host` header names, as s3s reads it: none for an IP address (always path
    /// style), else the subdomain of a configured domain.
    pub fn bucket_of_host(&self, host: &str) -> Option<String> {
        let name = strip_port(host).trim_start_matches('[').trim_end_matches(']');
        if name.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        self.parse_host_header(host).ok().and_then(|v| v.bucket().map(str::to_owned))
    }
}

/// The host without its port (`[::1]:9000` → `[::1]`).
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

impl S3Host for LocalDomains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = strip_port(host).to_ascii_lowercase();
        for domain in &self.domains {
            if name == *domain {
                return Ok(VirtualHost::new(domain.as_str()));
            }
            if let Some(bucket) = name.strip_suffix(domain.as_str()).and_then(|b| b.strip_suffix('.')) {
                if !bucket.is_empty() {
                    return Ok(VirtualHost::new(domain.as_str()).with_bucket(Cow::Owned(bucket.to_owned())));
                }
            }
        }
        Ok(VirtualHost::new(Cow::Owned(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_subdomains_of_configured_domains_only() {
        let h = LocalDomains::new(&["localhost".to_string()]);
        let vh = h.parse_host_header("weir-input.localhost:9000").unwrap();
        assert_eq!(vh.bucket(), Some("weir-input"));
        assert_eq!(h.parse_host_header("localhost:9000").unwrap().bucket(), None);
        assert_eq!(h.parse_host_header("LOCALHOST").unwrap().bucket(), None);
        assert_eq!(h.parse_host_header("myhost.example.com:9000").unwrap().bucket(), None);
        assert_eq!(h.parse_host_header("a.b.localhost").unwrap().bucket(), Some("a.b"));
        assert_eq!(strip_port("[::1]:9000"), "[::1]");
        assert_eq!(h.bucket_of_host("weir-input.localhost:9000").as_deref(), Some("weir-input"));
        assert_eq!(h.bucket_of_host("127.0.0.1:9000"), None);
        assert_eq!(h.bucket_of_host("[::1]:9000"), None);
        assert_eq!(strip_port("[::1]"), "[::1]");
    }
}
