use rotate_mysql::MySql;
use rotation_database::DatabaseTarget;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up| {
        let engine = MySql::from_environment(&start_up.env)?;
        Ok(DatabaseTarget::from_start_up(engine, start_up)?)
    })
    .await
}
