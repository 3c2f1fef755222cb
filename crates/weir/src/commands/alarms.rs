//! `weir alarms`: every alarm rule with its state and the reason, as `weir run` last evaluated
//! them (`<data dir>/alarms.json`, written every 10 s), or, with `[aws]` in the config, as
//! CloudWatch last evaluated the alarms `weir setup aws` made of them.

use anyhow::{Context, Result};
use weir_core::alarms::AlarmState;
use weir_server::alarms::{read_states, AlarmStatus};

use crate::cli::{AlarmsArgs, Global};
use crate::{backend, config};

pub async fn run(global: &Global, args: AlarmsArgs) -> Result<u8> {
    let loaded = config::load(global)?;
    if let Some(aws) = &loaded.config.aws {
        let (sdk, _) = backend::aws_sdk(aws, args.endpoint_url.as_deref()).await;
        let readings = weir_aws::cloudwatch::alarm_states(&sdk, aws, &loaded.config.alarms.rules())
            .await
            .context("reading the alarms from CloudWatch")?;
        let states: Vec<AlarmStatus> = readings
            .into_iter()
            .map(|r| AlarmStatus {
                name: r.rule,
                description: r.description,
                state: r.state,
                reason: r.reason,
            })
            .collect();
        return print(&states, args.json);
    }
    let mut states = read_states(&loaded.data_dir)
        .with_context(|| format!("reading {}", loaded.data_dir.join("alarms.json").display()))?;
    if states.is_empty() {
        states = loaded
            .config
            .alarms
            .rules()
            .into_iter()
            .map(|r| AlarmStatus {
                name: r.name,
                description: r.description,
                state: AlarmState::InsufficientData,
                reason: "not evaluated yet (weir run evaluates the alarms every 10 s)".into(),
            })
            .collect();
    }
    print(&states, args.json)
}

fn print(states: &[AlarmStatus], json: bool) -> Result<u8> {
    if json {
        for s in states {
            outln!("{}", serde_json::to_string(s)?)?;
        }
        return Ok(0);
    }
    outln!("{:<16} {:<18} {:<58} REASON", "ALARM", "STATE", "DESCRIPTION")?;
    for s in states {
        outln!("{:<16} {:<18} {:<58} {}", s.name, s.state.as_str(), s.description, s.reason)?;
    }
    Ok(0)
}
