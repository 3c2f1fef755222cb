//! `weir dlq`: the messages that could not be processed, and sending them back.

use anyhow::{bail, Context, Result};
use weir_core::event::QueueEvent;
use weir_core::JobId;
use weir_ports::DeadLetter;

use crate::cli::{DlqCommand, Global};
use crate::config;

pub async fn run(global: &Global, cmd: DlqCommand) -> Result<u8> {
    let loaded = config::load(global)?;
    let ports = crate::backend::ports(&loaded, None).await?;
    match cmd {
        DlqCommand::List { json } => {
            let dead = ports.queue.dlq_list(0).await?;
            if json {
                for d in &dead {
                    outln!("{}", as_json(d))?;
                }
            } else if dead.is_empty() {
                outln!("the dead-letter queue is empty")?;
            } else {
                outln!("{:<38} {:<8} {:<25} OBJECT", "MESSAGE", "RECEIVES", "DEAD-LETTERED")?;
                for d in &dead {
                    outln!(
                        "{:<38} {:<8} {:<25} {}",
                        d.message_id,
                        d.receive_count,
                        d.dead_lettered_at.to_rfc3339(),
                        object_of(d)
                    )?;
                }
            }
        }
        DlqCommand::Show { message_id } => {
            let dead = ports.queue.dlq_list(0).await?;
            let d = dead
                .iter()
                .find(|d| d.message_id == message_id)
                .with_context(|| format!("no dead letter {message_id}"))?;
            outln!("{}", serde_json::to_string_pretty(&as_json(d))?)?;
            if let Some(id) = job_of(d) {
                if let Some(job) = ports.jobs.get(&id).await? {
                    outln!("\n{}", super::jobs::describe(&job))?;
                }
            }
        }
        DlqCommand::Replay { ids, all } => {
            if !all && ids.is_empty() {
                bail!("name the message ids to replay, or --all");
            }
            let moved = if all {
                ports.queue.dlq_replay(None).await?
            } else {
                ports.queue.dlq_replay(Some(&ids)).await?
            };
            outln!("replayed {moved} message(s) onto the main queue")?;
            if !all && moved < ids.len() {
                eprintln!("{} id(s) were not in the dead-letter queue", ids.len() - moved);
                return Ok(1);
            }
        }
        DlqCommand::Purge { yes } => {
            if !yes {
                bail!("purging deletes every dead letter for good; add --yes to confirm");
            }
            outln!("purged {} message(s)", ports.queue.dlq_purge().await?)?;
        }
    }
    Ok(0)
}

fn as_json(d: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "message_id": d.message_id,
        "receive_count": d.receive_count,
        "sent_at": d.sent_at,
        "dead_lettered_at": d.dead_lettered_at,
        "object": object_of(d),
        "job_id": job_of(d).map(|j| j.0),
        "body": serde_json::from_str::<serde_json::Value>(&d.body).unwrap_or_else(|_| d.body.clone().into()),
    })
}

fn object_of(d: &DeadLetter) -> String {
    match QueueEvent::parse(&d.body) {
        Ok(QueueEvent::Records(e)) => e
            .records
            .first()
            .map(|r| format!("{}/{}", r.s3.bucket.name, r.key().unwrap_or_else(|_| r.s3.object.key.clone())))
            .unwrap_or_default(),
        Ok(QueueEvent::TestEvent) => "(s3:TestEvent)".into(),
        Err(e) => format!("(not an S3 event: {})", e.reason),
    }
}

fn job_of(d: &DeadLetter) -> Option<JobId> {
    let QueueEvent::Records(e) = QueueEvent::parse(&d.body).ok()? else { return None };
    let r = e.records.first()?;
    Some(JobId::for_object(&r.s3.bucket.name, &r.key().ok()?, &r.s3.object.e_tag))
}
