use std::sync::Arc;

use rotate_postgres::config;
use rotate_postgres::target::PostgresTarget;
use rotation::lambda::StartUp;
use rotation::master::AwsRds;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up: &StartUp| {
        let config = config::from_environment(&start_up.env)?;
        let rds = AwsRds::new(aws_sdk_rds::Client::new(&start_up.aws));
        Ok(PostgresTarget::new(
            config,
            start_up.store.clone(),
            Arc::new(rds),
        )?)
    })
    .await
}
