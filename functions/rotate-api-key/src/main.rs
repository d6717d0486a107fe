use rotate_api_key::config::{self, ApiKeyConfig, ProviderConfig};
use rotate_api_key::http_provider::HttpProvider;
use rotate_api_key::iam::IamProvider;
use rotate_api_key::target::{ApiKeyTarget, KeyProvider};
use rotation::lambda::StartUp;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    rotation::lambda::run(async |start_up: &StartUp| {
        let ApiKeyConfig {
            provider,
            test_retry,
        } = config::from_environment(&start_up.env)?;
        let provider: Box<dyn KeyProvider> = match provider {
            ProviderConfig::Http(http) => {
                Box::new(HttpProvider::new(*http, start_up.store.clone())?)
            }
            ProviderConfig::AwsIam => Box::new(IamProvider::new(&start_up.aws)),
        };
        Ok(ApiKeyTarget::new(provider, test_retry))
    })
    .await
}
