use std::sync::Arc;

use rotate_postgres::{Postgres, POSTGRES};
use rotation::lambda::StartUp;
use rotation_database::master::AwsRds;
use rotation_database::{DatabaseConfig, DatabaseTarget};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up: &StartUp| {
        let config = DatabaseConfig::from_environment(&start_up.env, &POSTGRES)?;
        let rds = AwsRds::new(aws_sdk_rds::Client::new(&start_up.aws));
        Ok(DatabaseTarget::new(
            Postgres,
            config,
            start_up.store.clone(),
            Arc::new(rds),
        )?)
    })
    .await
}
