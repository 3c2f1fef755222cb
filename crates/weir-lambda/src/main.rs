//! The `weir-lambda` binary (runtime `provided.al2023`, handler `bootstrap`): the SQS event
//! source handler of `weir_lambda`, and the target of EventBridge schedules, on the Lambda
//! runtime API.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt().json().with_current_span(false).without_time().init();
    let handler = weir_lambda::Handler::from_env().await.map_err(|e| Error::from(format!("{e:#}")))?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let handler = handler.clone();
        async move { handler.invoke(event.payload).await.map_err(|e| Error::from(format!("{e:#}"))) }
    }))
    .await
}
