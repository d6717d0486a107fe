//! The master secret of alternating users (`masterarn`), and the RDS questions around it.
//!
//! A master secret is either a full database secret (`engine`, `host`, `username`, `password`,
//! …), used as it is, or an RDS-managed master secret (`rds!db-…`, `rds!cluster-…`) that holds
//! exactly `username` and `password`: its host, port and engine come from the database named in
//! the secret's tag `aws:rds:primarydbinstancearn` (`DescribeDBInstances`) or
//! `aws:rds:primarydbclusterarn` (`DescribeDBClusters`, the writer endpoint).
//!
//! The replica check lets a user secret point at a read replica or an Aurora reader endpoint of
//! the master's database. It asks RDS only when both hosts are RDS endpoints: a database on EC2
//! or elsewhere whose host differs from the master's gets the plain host-mismatch error, and the
//! function needs no RDS permission at all.

use std::sync::Arc;

use crate::secret::{DatabaseSecret, EngineFamily};
use async_trait::async_trait;
use aws_sdk_rds::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rotation::store::{current_document_of, SecretStore};
use rotation::{RotationError, SecretDocument, TargetError};

/// The tags RDS puts on the master secrets it manages (compared ignoring case).
const INSTANCE_TAG: &str = "aws:rds:primarydbinstancearn";
const CLUSTER_TAG: &str = "aws:rds:primarydbclusterarn";

/// RDS refuses longer identifiers; the AWS templates check it before calling.
const MAX_ARN_LENGTH: usize = 256;

/// The DNS suffixes of RDS endpoints, in every partition.
const RDS_DOMAINS: [&str; 6] = [
    ".rds.amazonaws.com",
    ".rds.amazonaws.com.cn",
    ".rds.c2s.ic.gov",
    ".rds.sc2s.sgov.gov",
    ".rds.cloud.adc-e.uk",
    ".rds.csp.hci.ic.gov",
];

/// What `DescribeDBInstances` tells us about one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdsInstance {
    pub identifier: String,
    pub endpoint: Option<String>,
    pub port: Option<u16>,
    pub engine: Option<String>,
    /// The source of a read replica: an identifier, or an ARN for a cross-region replica.
    pub read_replica_source: Option<String>,
    /// The Aurora cluster the instance belongs to.
    pub cluster: Option<String>,
}

/// What `DescribeDBClusters` tells us about one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdsCluster {
    pub identifier: String,
    /// The writer endpoint.
    pub endpoint: Option<String>,
    pub reader_endpoint: Option<String>,
    pub port: Option<u16>,
    pub engine: Option<String>,
    pub members: Vec<RdsClusterMember>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdsClusterMember {
    pub instance: String,
    pub is_writer: bool,
}

/// A failed RDS call: what the service said, and whether a retry may help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdsError {
    pub message: String,
    pub transient: bool,
}

/// The RDS calls master-secret resolution and the replica check need (faked in unit tests).
/// `Ok(None)`: no such instance or cluster.
#[async_trait]
pub trait RdsLookup: Send + Sync {
    /// `DescribeDBInstances` by identifier or ARN.
    async fn instance(&self, identifier: &str) -> Result<Option<RdsInstance>, RdsError>;
    /// `DescribeDBClusters` by identifier or ARN.
    async fn cluster(&self, identifier: &str) -> Result<Option<RdsCluster>, RdsError>;
}

/// [`RdsLookup`] over the AWS SDK. The client shares the function's AWS configuration, with its
/// bounded timeouts and retries.
pub struct AwsRds {
    client: aws_sdk_rds::Client,
}

impl AwsRds {
    pub fn new(client: aws_sdk_rds::Client) -> Self {
        AwsRds { client }
    }
}

fn rds_error<E>(error: SdkError<E>, not_found: &str) -> Result<(), RdsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if error.code() == Some(not_found) {
        return Ok(());
    }
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            matches!(
                error.code(),
                Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded")
            ) || status == 429
                || status >= 500
        }
        _ => false,
    };
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(&error).to_string(),
    };
    Err(RdsError { message, transient })
}

fn port(port: Option<i32>) -> Option<u16> {
    port.and_then(|port| u16::try_from(port).ok())
}

#[async_trait]
impl RdsLookup for AwsRds {
    async fn instance(&self, identifier: &str) -> Result<Option<RdsInstance>, RdsError> {
        let output = match self
            .client
            .describe_db_instances()
            .db_instance_identifier(identifier)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => return rds_error(error, "DBInstanceNotFound").map(|()| None),
        };
        Ok(output.db_instances().first().map(|instance| RdsInstance {
            identifier: instance
                .db_instance_identifier()
                .unwrap_or_default()
                .to_owned(),
            endpoint: instance
                .endpoint()
                .and_then(|endpoint| endpoint.address())
                .map(str::to_owned),
            port: port(instance.endpoint().and_then(|endpoint| endpoint.port())),
            engine: instance.engine().map(str::to_owned),
            read_replica_source: instance
                .read_replica_source_db_instance_identifier()
                .map(str::to_owned),
            cluster: instance.db_cluster_identifier().map(str::to_owned),
        }))
    }

    async fn cluster(&self, identifier: &str) -> Result<Option<RdsCluster>, RdsError> {
        let output = match self
            .client
            .describe_db_clusters()
            .db_cluster_identifier(identifier)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => return rds_error(error, "DBClusterNotFoundFault").map(|()| None),
        };
        Ok(output.db_clusters().first().map(|cluster| RdsCluster {
            identifier: cluster
                .db_cluster_identifier()
                .unwrap_or_default()
                .to_owned(),
            endpoint: cluster.endpoint().map(str::to_owned),
            reader_endpoint: cluster.reader_endpoint().map(str::to_owned),
            port: port(cluster.port()),
            engine: cluster.engine().map(str::to_owned),
            members: cluster
                .db_cluster_members()
                .iter()
                .map(|member| RdsClusterMember {
                    instance: member
                        .db_instance_identifier()
                        .unwrap_or_default()
                        .to_owned(),
                    is_writer: member.is_cluster_writer().unwrap_or(false),
                })
                .collect(),
        }))
    }
}

/// Which RDS API a failure came from, for the AWS templates' messages.
#[derive(Clone, Copy)]
enum Api {
    Instances,
    Clusters,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Instances => "DescribeDBInstances",
            Api::Clusters => "DescribeDBClusters",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Api::Instances => "DB Instance",
            Api::Clusters => "DB Cluster",
        }
    }

    fn failed(self, error: RdsError) -> TargetError {
        let message = format!(
            "Encountered API error while fetching connection parameters from {} RDS API: {}",
            self.name(),
            error.message
        );
        if error.transient {
            TargetError::unreachable(message)
        } else {
            TargetError::rejected(message)
        }
    }

    fn not_found(self, arn: &str) -> TargetError {
        let plural = match self {
            Api::Instances => "Instances",
            Api::Clusters => "Clusters",
        };
        TargetError::rejected(format!(
            "{arn} is not a valid {} ARN. No {plural} found when using {} RDS API to get connection params.",
            self.what(),
            self.name()
        ))
    }
}

/// Reads master secrets, asking RDS where an RDS-managed secret leaves out the connection.
pub struct MasterSecrets {
    store: Arc<dyn SecretStore>,
    rds: Arc<dyn RdsLookup>,
    /// The engines the function rotates; the master must be one of them.
    family: EngineFamily,
}

impl MasterSecrets {
    pub fn new(store: Arc<dyn SecretStore>, rds: Arc<dyn RdsLookup>, family: EngineFamily) -> Self {
        MasterSecrets { store, rds, family }
    }

    /// The master secret named by `masterarn`, with host, port and engine filled in from RDS
    /// when it is an RDS-managed secret holding only `username` and `password`. The caller
    /// sets `dbname` (the master logs in to the user's database).
    pub async fn resolve(&self, master_arn: &str) -> Result<DatabaseSecret, RotationError> {
        let (mut document, what) =
            current_document_of(self.store.as_ref(), "master secret", master_arn).await?;
        if is_rds_managed(&document) {
            self.complete_from_rds(master_arn, &mut document).await?;
        }
        Ok(DatabaseSecret::from_document(
            &document,
            &self.family,
            &what,
        )?)
    }

    async fn complete_from_rds(
        &self,
        master_arn: &str,
        document: &mut SecretDocument,
    ) -> Result<(), RotationError> {
        let description = self.store.describe(master_arn).await?;
        // The last matching tag wins, as in the AWS templates.
        let mut database = None;
        for (key, value) in &description.tags {
            if key.eq_ignore_ascii_case(INSTANCE_TAG) {
                database = Some((Api::Instances, value.as_str()));
            } else if key.eq_ignore_ascii_case(CLUSTER_TAG) {
                database = Some((Api::Clusters, value.as_str()));
            }
        }
        let Some((api, arn)) = database else {
            tracing::warn!(
                "master secret {master_arn} holds only username and password but has no \
                 {INSTANCE_TAG} or {CLUSTER_TAG} tag naming its database"
            );
            return Ok(());
        };
        if arn.len() > MAX_ARN_LENGTH {
            return Err(TargetError::invalid_secret(format!(
                "{arn} is not a valid {} ARN. It exceeds the maximum length of {MAX_ARN_LENGTH}.",
                api.what()
            ))
            .into());
        }
        let (host, port, engine) = match api {
            Api::Instances => {
                let instance = self
                    .rds
                    .instance(arn)
                    .await
                    .map_err(|error| api.failed(error))?
                    .ok_or_else(|| api.not_found(arn))?;
                (instance.endpoint, instance.port, instance.engine)
            }
            Api::Clusters => {
                let cluster = self
                    .rds
                    .cluster(arn)
                    .await
                    .map_err(|error| api.failed(error))?
                    .ok_or_else(|| api.not_found(arn))?;
                (cluster.endpoint, cluster.port, cluster.engine)
            }
        };
        if let Some(host) = host {
            document.set_str("host", &host);
        }
        if let Some(engine) = engine {
            document.set_str("engine", &engine);
        }
        if let Some(port) = port {
            document.set_str("port", &port.to_string());
        }
        Ok(())
    }

    /// Whether the user's database `user_host` may be changed through the master's session:
    /// the same host, or an RDS read replica or Aurora reader of the master's database.
    pub async fn check_host(
        &self,
        user: &DatabaseSecret,
        master: &DatabaseSecret,
    ) -> Result<(), TargetError> {
        // Same host name and port: the same server. (Another port on the same host is another
        // server, where the clone would be made in vain.)
        if same_host(&user.host, &master.host) && user.port == master.port {
            return Ok(());
        }
        if same_host(&user.host, &master.host) {
            return Err(TargetError::invalid_secret(format!(
                "Current database {}:{} is not the same server as master {}:{}",
                user.host, user.port, master.host, master.port
            )));
        }
        if is_rds_replica(self.rds.as_ref(), user, master).await? {
            return Ok(());
        }
        Err(TargetError::invalid_secret(format!(
            "Current database host {} is not the same host as/rds replica of master {}",
            user.host, master.host
        )))
    }
}

/// The RDS-managed format: exactly `username` and `password`.
fn is_rds_managed(document: &SecretDocument) -> bool {
    let mut keys: Vec<&str> = document.keys().collect();
    keys.sort_unstable();
    keys == ["password", "username"]
}

fn normalise(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn same_host(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

/// Whether a host name is an RDS endpoint (instance, cluster, reader or custom endpoint).
pub fn is_rds_host(host: &str) -> bool {
    let host = normalise(host);
    RDS_DOMAINS.iter().any(|domain| {
        host.strip_suffix(domain)
            .is_some_and(|name| !name.is_empty() && !name.ends_with('.'))
    })
}

fn first_label(host: &str) -> String {
    normalise(host)
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Whether an RDS replica source (identifier, or ARN for a cross-region replica) names `id`.
fn names_instance(source: &str, id: &str) -> bool {
    let source = source.to_ascii_lowercase();
    source == id || source.ends_with(&format!(":db:{id}"))
}

/// The replica check of the AWS templates (after their PR #156), restricted to RDS endpoints.
async fn is_rds_replica(
    rds: &dyn RdsLookup,
    user: &DatabaseSecret,
    master: &DatabaseSecret,
) -> Result<bool, TargetError> {
    if !is_rds_host(&user.host) || !is_rds_host(&master.host) {
        return Ok(false);
    }
    let user_id = first_label(&user.host);
    let master_id = first_label(&master.host);
    match master.engine.as_str() {
        // Plain RDS engines: a read replica names its source instance.
        "postgres" | "mysql" | "mariadb" => {
            let Some(replica) = rds
                .instance(&user_id)
                .await
                .map_err(|error| Api::Instances.failed(error))?
            else {
                return Ok(false);
            };
            Ok(replica
                .read_replica_source
                .is_some_and(|source| names_instance(&source, &master_id)))
        }
        "aurora-postgresql" | "aurora-mysql" => {
            let normalised = normalise(&master.host);
            let second_label = normalised.split('.').nth(1).unwrap_or_default();
            let cluster_id = if second_label.contains("cluster") {
                master_id
            } else {
                let Some(instance) = rds
                    .instance(&master_id)
                    .await
                    .map_err(|error| Api::Instances.failed(error))?
                else {
                    return Ok(false);
                };
                let Some(cluster) = instance.cluster else {
                    return Ok(false);
                };
                cluster
            };
            let Some(cluster) = rds
                .cluster(&cluster_id)
                .await
                .map_err(|error| Api::Clusters.failed(error))?
            else {
                return Ok(false);
            };
            let reader = cluster
                .reader_endpoint
                .as_deref()
                .is_some_and(|reader| same_host(reader, &user.host));
            let non_writer_member = cluster
                .members
                .iter()
                .any(|member| !member.is_writer && member.instance.eq_ignore_ascii_case(&user_id));
            Ok(reader || non_writer_member)
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use rotation::target::TargetErrorKind;
    use rotation_testkit::memory::InMemoryStore;
    use secrecy::ExposeSecret;
    use secrecy::SecretString;
    use serde_json::json;

    use super::*;

    /// A fake RDS with a few instances and clusters; it counts every call.
    #[derive(Default)]
    struct FakeRds {
        instances: Vec<RdsInstance>,
        clusters: Vec<RdsCluster>,
        fail: Option<RdsError>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeRds {
        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("calls").clone()
        }
    }

    /// RDS accepts an identifier or an ARN ending in `:db:<id>` / `:cluster:<id>`.
    fn matches(identifier: &str, id: &str, kind: &str) -> bool {
        identifier == id || identifier.ends_with(&format!(":{kind}:{id}"))
    }

    #[async_trait]
    impl RdsLookup for FakeRds {
        async fn instance(&self, identifier: &str) -> Result<Option<RdsInstance>, RdsError> {
            self.calls
                .lock()
                .expect("calls")
                .push(format!("DescribeDBInstances {identifier}"));
            if let Some(error) = &self.fail {
                return Err(error.clone());
            }
            Ok(self
                .instances
                .iter()
                .find(|instance| matches(identifier, &instance.identifier, "db"))
                .cloned())
        }

        async fn cluster(&self, identifier: &str) -> Result<Option<RdsCluster>, RdsError> {
            self.calls
                .lock()
                .expect("calls")
                .push(format!("DescribeDBClusters {identifier}"));
            if let Some(error) = &self.fail {
                return Err(error.clone());
            }
            Ok(self
                .clusters
                .iter()
                .find(|cluster| matches(identifier, &cluster.identifier, "cluster"))
                .cloned())
        }
    }

    const INSTANCE_ARN: &str = "arn:aws:rds:eu-west-1:123456789012:db:orders";
    const CLUSTER_ARN: &str = "arn:aws:rds:eu-west-1:123456789012:cluster:ledger";

    fn orders() -> RdsInstance {
        RdsInstance {
            identifier: "orders".into(),
            endpoint: Some("orders.abc123.eu-west-1.rds.amazonaws.com".into()),
            port: Some(5433),
            engine: Some("postgres".into()),
            ..RdsInstance::default()
        }
    }

    fn orders_replica() -> RdsInstance {
        RdsInstance {
            identifier: "orders-replica".into(),
            endpoint: Some("orders-replica.abc123.eu-west-1.rds.amazonaws.com".into()),
            port: Some(5433),
            engine: Some("postgres".into()),
            read_replica_source: Some("orders".into()),
            ..RdsInstance::default()
        }
    }

    fn ledger() -> RdsCluster {
        RdsCluster {
            identifier: "ledger".into(),
            endpoint: Some("ledger.cluster-abc123.eu-west-1.rds.amazonaws.com".into()),
            reader_endpoint: Some("ledger.cluster-ro-abc123.eu-west-1.rds.amazonaws.com".into()),
            port: Some(5432),
            engine: Some("aurora-postgresql".into()),
            members: vec![
                RdsClusterMember {
                    instance: "ledger-1".into(),
                    is_writer: true,
                },
                RdsClusterMember {
                    instance: "ledger-2".into(),
                    is_writer: false,
                },
            ],
        }
    }

    fn ledger_instance(id: &str) -> RdsInstance {
        RdsInstance {
            identifier: id.into(),
            endpoint: Some(format!("{id}.abc123.eu-west-1.rds.amazonaws.com")),
            port: Some(5432),
            engine: Some("aurora-postgresql".into()),
            cluster: Some("ledger".into()),
            ..RdsInstance::default()
        }
    }

    fn fake() -> Arc<FakeRds> {
        Arc::new(FakeRds {
            instances: vec![
                orders(),
                orders_replica(),
                ledger_instance("ledger-1"),
                ledger_instance("ledger-2"),
            ],
            clusters: vec![ledger()],
            ..FakeRds::default()
        })
    }

    fn masters(store: &Arc<InMemoryStore>, rds: &Arc<FakeRds>) -> MasterSecrets {
        MasterSecrets::new(store.clone(), rds.clone(), crate::secret::tests::POSTGRES)
    }

    fn rds_managed(store: &InMemoryStore, name: &str) -> String {
        store.create_secret(
            name,
            &json!({"username": "postgres", "password": "master-pw"}).to_string(),
        )
    }

    fn secret(engine: &str, host: &str) -> DatabaseSecret {
        DatabaseSecret {
            engine: engine.into(),
            host: host.into(),
            port: 5432,
            username: "app".into(),
            password: SecretString::from("pw"),
            dbname: None,
            ssl: rotation::secret::FlagValue::Absent,
            master_arn: None,
        }
    }

    #[tokio::test]
    async fn an_rds_managed_instance_secret_gets_host_port_and_engine_from_describe_db_instances() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let arn = rds_managed(&store, "rds!db-1234");
        store.tag(&arn, "aws:rds:primaryDBInstanceArn", INSTANCE_ARN);
        let master = masters(&store, &rds).resolve(&arn).await.expect("resolved");
        assert_eq!(master.host, "orders.abc123.eu-west-1.rds.amazonaws.com");
        assert_eq!(master.port, 5433);
        assert_eq!(master.engine, "postgres");
        assert_eq!(master.username, "postgres");
        assert_eq!(master.password.expose_secret(), "master-pw");
        assert_eq!(rds.calls(), [format!("DescribeDBInstances {INSTANCE_ARN}")]);
    }

    #[tokio::test]
    async fn an_rds_managed_cluster_secret_gets_the_writer_endpoint_from_describe_db_clusters() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let arn = rds_managed(&store, "rds!cluster-1234");
        store.tag(&arn, "owner", "payments");
        store.tag(&arn, "aws:rds:primarydbclusterarn", CLUSTER_ARN);
        let master = masters(&store, &rds).resolve(&arn).await.expect("resolved");
        assert_eq!(
            master.host,
            "ledger.cluster-abc123.eu-west-1.rds.amazonaws.com"
        );
        assert_eq!(master.port, 5432);
        assert_eq!(master.engine, "aurora-postgresql");
        assert_eq!(rds.calls(), [format!("DescribeDBClusters {CLUSTER_ARN}")]);
    }

    #[tokio::test]
    async fn a_full_master_secret_is_used_as_it_is_without_any_rds_call() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let arn = store.create_secret(
            "master",
            &json!({"engine": "postgres", "host": "db.internal", "port": "6432",
                    "username": "admin", "password": "pw", "ssl": false, "dbname": "ops"})
            .to_string(),
        );
        store.tag(&arn, INSTANCE_TAG, INSTANCE_ARN);
        let master = masters(&store, &rds).resolve(&arn).await.expect("resolved");
        assert_eq!(master.host, "db.internal");
        assert_eq!(master.port, 6432);
        assert_eq!(master.username, "admin");
        assert_eq!(master.ssl, rotation::secret::FlagValue::False);
        assert!(rds.calls().is_empty());
    }

    #[tokio::test]
    async fn rds_failures_and_unknown_databases_use_the_aws_texts() {
        let store = Arc::new(InMemoryStore::new());
        let arn = rds_managed(&store, "rds!db-gone");
        store.tag(
            &arn,
            INSTANCE_TAG,
            "arn:aws:rds:eu-west-1:123456789012:db:gone",
        );
        let error = masters(&store, &fake())
            .resolve(&arn)
            .await
            .expect_err("no such instance");
        assert_eq!(
            error.to_string(),
            "arn:aws:rds:eu-west-1:123456789012:db:gone is not a valid DB Instance ARN. \
             No Instances found when using DescribeDBInstances RDS API to get connection params."
        );

        let failing = Arc::new(FakeRds {
            fail: Some(RdsError {
                message: "AccessDenied: not authorized to perform rds:DescribeDBInstances".into(),
                transient: false,
            }),
            ..FakeRds::default()
        });
        let error = masters(&store, &failing)
            .resolve(&arn)
            .await
            .expect_err("denied");
        assert_eq!(error.error_type(), "TargetRejected");
        assert!(error.to_string().starts_with(
            "Encountered API error while fetching connection parameters from DescribeDBInstances RDS API: AccessDenied"
        ));
    }

    #[tokio::test]
    async fn an_untagged_rds_managed_secret_fails_on_a_missing_connection_field() {
        let store = Arc::new(InMemoryStore::new());
        let arn = rds_managed(&store, "rds!db-untagged");
        let error = masters(&store, &fake())
            .resolve(&arn)
            .await
            .expect_err("no host");
        assert_eq!(error.error_type(), "InvalidSecret");
        assert!(
            error
                .to_string()
                .ends_with("engine key is missing from secret JSON"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_instance_read_replica_of_the_master_passes_the_host_check() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let user = secret(
            "postgres",
            "orders-replica.abc123.eu-west-1.rds.amazonaws.com",
        );
        let master = secret("postgres", "orders.abc123.eu-west-1.rds.amazonaws.com");
        masters(&store, &rds)
            .check_host(&user, &master)
            .await
            .expect("a replica");
        assert_eq!(rds.calls(), ["DescribeDBInstances orders-replica"]);

        // The master is not the replica's source the other way round.
        let error = masters(&store, &rds)
            .check_host(&master, &user)
            .await
            .expect_err("not a replica");
        assert_eq!(error.kind, TargetErrorKind::InvalidSecret);
    }

    #[tokio::test]
    async fn an_aurora_reader_endpoint_or_reader_instance_passes_the_host_check() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let master = secret(
            "aurora-postgresql",
            "ledger.cluster-abc123.eu-west-1.rds.amazonaws.com",
        );
        let reader = secret(
            "aurora-postgresql",
            "ledger.cluster-ro-abc123.eu-west-1.rds.amazonaws.com",
        );
        masters(&store, &rds)
            .check_host(&reader, &master)
            .await
            .expect("the reader endpoint");
        assert_eq!(rds.calls(), ["DescribeDBClusters ledger"]);

        // A master given as its writer instance: the cluster is found through the instance.
        let writer_instance = secret(
            "aurora-postgresql",
            "ledger-1.abc123.eu-west-1.rds.amazonaws.com",
        );
        let reader_instance = secret(
            "aurora-postgresql",
            "ledger-2.abc123.eu-west-1.rds.amazonaws.com",
        );
        masters(&store, &rds)
            .check_host(&reader_instance, &writer_instance)
            .await
            .expect("a reader instance");
        let error = masters(&store, &rds)
            .check_host(&writer_instance, &reader_instance)
            .await
            .expect_err("the writer is no replica");
        assert!(error
            .message
            .contains("is not the same host as/rds replica of master"));
    }

    #[tokio::test]
    async fn a_host_that_is_not_an_rds_endpoint_is_a_mismatch_without_any_rds_call() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let user = secret("postgres", "replica.db.internal");
        let master = secret("postgres", "primary.db.internal");
        let error = masters(&store, &rds)
            .check_host(&user, &master)
            .await
            .expect_err("different hosts");
        assert_eq!(
            error.message,
            "Current database host replica.db.internal is not the same host as/rds replica of master primary.db.internal"
        );
        assert_eq!(error.kind, TargetErrorKind::InvalidSecret);
        // An RDS master with a non-RDS user host: no call either.
        let master = secret("postgres", "orders.abc123.eu-west-1.rds.amazonaws.com");
        masters(&store, &rds)
            .check_host(&user, &master)
            .await
            .expect_err("different hosts");
        assert!(rds.calls().is_empty(), "{:?}", rds.calls());

        // The same host, spelt with another case or a trailing dot, needs no call.
        let same = secret("postgres", "PRIMARY.db.internal.");
        masters(&store, &rds)
            .check_host(&same, &secret("postgres", "primary.db.internal"))
            .await
            .expect("same host");
        assert!(rds.calls().is_empty());
    }

    #[tokio::test]
    async fn the_same_host_on_another_port_is_another_server() {
        let store = Arc::new(InMemoryStore::new());
        let rds = fake();
        let user = secret("postgres", "db.internal");
        let mut master = secret("postgres", "db.internal");
        master.port = 6543;
        let error = masters(&store, &rds)
            .check_host(&user, &master)
            .await
            .expect_err("another port");
        assert_eq!(
            error.message,
            "Current database db.internal:5432 is not the same server as master db.internal:6543"
        );
        assert!(rds.calls().is_empty());
    }

    #[test]
    fn rds_endpoints_are_recognised_in_every_partition() {
        assert!(is_rds_host("orders.abc123.eu-west-1.rds.amazonaws.com"));
        assert!(is_rds_host("ORDERS.abc.cn-north-1.rds.amazonaws.com.cn."));
        assert!(is_rds_host("x.y.us-iso-east-1.rds.c2s.ic.gov"));
        assert!(!is_rds_host("rds.amazonaws.com"));
        assert!(!is_rds_host("db.example.com"));
        assert!(!is_rds_host("evil-rds.amazonaws.com.example.com"));
        assert!(!is_rds_host("localhost"));
    }
}
