//! Persisting a job's workflow position, so a redelivered message resumes where the last
//! attempt stopped instead of repeating side effects (moving a source that is already moved).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use weir_core::job::Checkpoint;
use weir_core::Job;
use weir_ports::JobStore;
use weir_workflow::definition::StateKind;
use weir_workflow::{Completed, StateMachine, TaskError};

/// Built-in tasks that are safe to run again, so no checkpoint is written after them. Moving
/// the source is safe to repeat too, but what ran before it is not once the source has moved
/// (reading it again fails), so a move is always checkpointed. So is a transform, although
/// repeating one over a small source costs less than the write: its checkpoint is what a retry
/// finds when the move after it happened and no later write did (a kill -9 between the two, or
/// a move's lost answer and then a failed save, as the soak at 5 % found). Without it the
/// retry starts over, finds the source gone and fails the job.
const REPEATABLE: [&str; 2] = ["weir:validate-schema", "weir:notify"];

/// Saves the job with a checkpoint after every completed Task state that changes the world
/// (moving, storing). Choice and Pass states and the [`REPEATABLE`] tasks are safe to repeat,
/// so they cost no write.
pub struct JobCheckpoints {
    jobs: Arc<dyn JobStore>,
    job: Mutex<Job>,
    tasks: HashSet<String>,
    /// The run whose lease every save is fenced on.
    run: String,
}

impl JobCheckpoints {
    pub fn new(jobs: Arc<dyn JobStore>, job: Job, machine: &StateMachine, run: &str) -> Self {
        let tasks = machine
            .states
            .iter()
            .filter(|(_, s)| match &s.kind {
                StateKind::Task { resource, .. } => !REPEATABLE.contains(&resource.as_str()),
                _ => false,
            })
            .map(|(name, _)| name.clone())
            .collect();
        JobCheckpoints { jobs, job: Mutex::new(job), tasks, run: run.to_owned() }
    }

    /// The latest checkpoint saved (or the one the job started with).
    pub fn latest(&self) -> Option<Checkpoint> {
        self.job.lock().unwrap().checkpoint.clone()
    }
}

#[async_trait]
impl weir_workflow::Checkpoint for JobCheckpoints {
    async fn completed(&self, point: Completed<'_>) -> Result<(), TaskError> {
        let job = {
            let mut job = self.job.lock().unwrap();
            let Some(next) = point.next else { return Ok(()) };
            let checkpoint = job.checkpoint.get_or_insert_with(Checkpoint::default);
            // Every state's records are kept, so the history of a resumed job stays whole...
            checkpoint.steps.extend_from_slice(point.steps);
            checkpoint.next_state = next.to_owned();
            checkpoint.data = point.output.clone();
            // ...but only a Task's completion is worth a write: the others have no side effects.
            if !self.tasks.contains(point.state) {
                return Ok(());
            }
            job.clone()
        };
        self.jobs.save_run(&job, &self.run).await.map_err(|e| {
            TaskError::transient(
                crate::tasks::errors::UNAVAILABLE,
                format!("saving the workflow checkpoint: {e}"),
            )
        })
    }
}
