use std::sync::Arc;

use rotate_mysql::config::MysqlConfig;
use rotate_mysql::target::MysqlTarget;
use rotation::lambda::StartUp;
use rotation::master::AwsRds;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up: &StartUp| {
        let config = MysqlConfig::from_environment(&start_up.env)?;
        let rds = AwsRds::new(aws_sdk_rds::Client::new(&start_up.aws));
        Ok(MysqlTarget::new(
            config,
            start_up.store.clone(),
            Arc::new(rds),
        )?)
    })
    .await
}
