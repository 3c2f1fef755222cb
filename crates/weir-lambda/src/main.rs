//! The `weir-lambda` binary (runtime `provided.al2023`, handler `bootstrap`): the SQS event
//! source handler of `weir_lambda`, on the Lambda runtime API.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_current_span(false).without_time().init();
    let handler = weir_lambda::Handler::from_env().await.map_err(|e| Error::from(format!("{e:#}")))?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let handler = handler.clone();
        async move { Ok::<SqsBatchResponse, Error>(handler.handle(event.payload).await) }
    }))
    .await
}
