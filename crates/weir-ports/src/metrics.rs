//! The metrics port: where a worker reports each job it takes in and each job it finishes, for
//! a metrics service that is not the job store (CloudWatch on AWS; embedded weir computes its
//! Prometheus metrics from the job store instead and needs none).
//!
//! Both calls are made on the job's path, so an adapter must only buffer (never wait on the
//! network) and must never fail: a job never fails because a metric could not be sent.

use weir_core::Job;

pub trait JobMetrics: Send + Sync {
    /// A file was taken in (its job's first attempt began, or it was refused or skipped).
    fn received(&self, job: &Job);
    /// A job reached a final status (`job.status`), with its counts and duration.
    fn finished(&self, job: &Job);
}
