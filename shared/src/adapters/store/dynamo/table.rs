//! Creating the table the store expects (tests, local emulation).

#[allow(unused_imports)]
use super::*;

/// Create the table the store expects (the SAM template declares the same): key
/// `pk`/`sk`, on-demand, TTL on `expires_at`. An existing table is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<()> {
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let schema = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(build_error)
    };
    let created = client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(schema("pk", KeyType::Hash)?)
        .key_schema(schema("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) =>
        {
            tracing::info!(table, "table exists");
        }
        Err(e) => return Err(unavailable("CreateTable", e)),
    }
    // Wait until it is usable (immediately on moto, seconds on AWS).
    for _ in 0..120 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| unavailable("DescribeTable", e))?;
        let status = d.table.and_then(|t| t.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .map_err(build_error)?;
    if let Err(e) = client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        // Enabling it twice is refused; anything else is a real failure.
        let text = DisplayErrorContext(&e).to_string();
        if !text.contains("already enabled") {
            return Err(unavailable("UpdateTimeToLive", e));
        }
    }
    Ok(())
}
