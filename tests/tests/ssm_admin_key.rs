//! On AWS the admin key is an SSM SecureString read at cold start (moto here).

use std::process::Command;

use e2e::moto::Moto;

#[tokio::test]
async fn the_admin_key_comes_from_an_ssm_secure_string() {
    let moto = Moto::start();
    // Put the parameter with boto3 (installed with moto), as `aws ssm put-parameter` would.
    let put = Command::new("python3")
        .args([
            "-c",
            "import boto3,sys; boto3.client('ssm', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id='x', aws_secret_access_key='x').put_parameter(Name='/watchstate/admin-key', \
             Value='k3y-from-ssm', Type='SecureString')",
            &moto.endpoint(),
        ])
        .status()
        .expect("python3");
    assert!(put.success());
    let conf = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "x", "x", None, None, "t",
        ))
        .build();
    let ssm = aws_sdk_ssm::Client::from_conf(conf);
    let key = watchstate::config::admin_key_from_ssm(&ssm, "/watchstate/admin-key")
        .await
        .expect("read");
    assert_eq!(key, "k3y-from-ssm");
    let err = watchstate::config::admin_key_from_ssm(&ssm, "/nope")
        .await
        .expect_err("missing parameter");
    assert!(err.contains("/nope") && !err.contains("k3y"), "{err}");
}
