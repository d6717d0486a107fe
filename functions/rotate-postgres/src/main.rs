use rotate_postgres::Postgres;
use rotation_database::DatabaseTarget;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up| Ok(DatabaseTarget::from_start_up(Postgres, start_up)?))
        .await
}
