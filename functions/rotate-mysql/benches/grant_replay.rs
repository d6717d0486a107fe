//! How long replaying an account's grants for its clone takes, and in how many round trips:
//! an account with 10,000 table grants on the stack's MariaDB, replayed for a fresh clone
//! (created, every grant given, password set) and again for a clone already equal (nothing to
//! give).
//!
//! `cargo bench -p rotate-mysql --bench grant_replay` measures 10,000 grants, five times each;
//! run without `--bench` (as `cargo test --all-targets` does) it only checks that the replay
//! works, with 10 grants, once.

use std::time::{Duration, Instant};

use rotate_mysql::account::{synchronise, Account, Replay};
use rotate_mysql::sql;
use rotation_tests::stack;
use secrecy::SecretString;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};

async fn run(conn: &mut MySqlConnection, statement: String) {
    sqlx::raw_sql(AssertSqlSafe(statement))
        .execute(conn)
        .await
        .unwrap_or_else(|error| panic!("bench set-up failed: {error}"));
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (grants, iterations) = if full { (10_000, 5) } else { (10, 1) };

    let db = stack::mariadb().await;
    let mut conn = MySqlConnection::connect(&db.admin_url())
        .await
        .expect("the admin logs in");
    let info = sql::server_info(&mut conn).await.expect("server info");
    let name = format!("bench{}", std::process::id());
    let model = Account {
        user: name.clone(),
        host: "%".to_owned(),
    };
    let clone_user = format!("{name}_clone");
    let quoted = format!("'{name}'@'%'");
    let clone_quoted = format!("'{clone_user}'@'%'");

    // Table grants on tables that do not exist: allowed when the grant includes CREATE, and far
    // cheaper than creating 10,000 tables.
    run(
        &mut conn,
        format!("CREATE USER {quoted} IDENTIFIED BY 'bench-model-pw'"),
    )
    .await;
    let statements: Vec<String> = (0..grants)
        .map(|i| format!("GRANT CREATE, SELECT ON `{name}_db`.`t{i:05}` TO {quoted}"))
        .collect();
    for chunk in statements.chunks(1000) {
        run(&mut conn, chunk.join(";\n")).await;
    }

    let password = SecretString::from("bench-Clone-pw-1".to_owned());
    let mut fresh = Vec::new();
    let mut in_sync = Vec::new();
    let mut last: Option<(Replay, Replay)> = None;
    for _ in 0..iterations {
        run(&mut conn, format!("DROP USER IF EXISTS {clone_quoted}")).await;
        let start = Instant::now();
        let created = synchronise(&mut conn, &info, &model, &clone_user, &password)
            .await
            .expect("replay for a new clone");
        fresh.push(start.elapsed());
        let start = Instant::now();
        let equal = synchronise(&mut conn, &info, &model, &clone_user, &password)
            .await
            .expect("replay for an equal clone");
        in_sync.push(start.elapsed());
        assert!(created.created && !equal.created);
        assert_eq!(created.statements, grants);
        assert_eq!(equal.statements, 0);
        last = Some((created, equal));
    }
    let clone_grants: Vec<String> =
        sqlx::query_scalar(AssertSqlSafe(format!("SHOW GRANTS FOR {clone_quoted}")))
            .fetch_all(&mut conn)
            .await
            .expect("the clone's grants");
    assert_eq!(clone_grants.len(), grants + 1);

    run(
        &mut conn,
        format!("DROP USER IF EXISTS {clone_quoted}, {quoted}"),
    )
    .await;
    conn.close().await.ok();

    let (created, equal) = last.expect("one iteration at least");
    println!(
        "grant_replay: {grants} table grants, {iterations} iteration(s): new clone median {:.3} s \
         ({} statements, {} round trips); equal clone median {:.3} s ({} round trips)",
        median(fresh).as_secs_f64(),
        created.statements,
        created.round_trips,
        median(in_sync).as_secs_f64(),
        equal.round_trips,
    );
}
