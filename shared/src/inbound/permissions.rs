//! Least privilege: which AWS SDK operations each function's code calls, and the IAM
//! actions they need. `infra/template.yaml` grants each function exactly these
//! actions on its resources; `tests/tests/least_privilege.rs` fails when the template
//! and this table differ, and when a function's code (run against moto) makes a call
//! this table does not list.
//!
//! Keep it next to the adapters' calls: a new SDK call in [`crate::adapters::store::dynamo`],
//! [`crate::adapters::eventbridge`], [`crate::adapters::sqs`], [`crate::inbound::config`] goes here
//! too, under each function that reaches it.

/// The functions of the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    Webhook,
    Api,
    Push,
    Import,
    Export,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Webhook,
        Function::Api,
        Function::Push,
        Function::Import,
        Function::Export,
    ];

    /// The function's logical id in the template.
    pub fn logical_id(self) -> &'static str {
        match self {
            Function::Webhook => "WebhookFunction",
            Function::Api => "ApiFunction",
            Function::Push => "PushFunction",
            Function::Import => "ImportFunction",
            Function::Export => "ExportFunction",
        }
    }
}

/// The store's calls on the item path (read a token, find and write items and their
/// changes, log a delivery, acknowledge a published change).
const ITEM_PATH: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];

/// SDK operations (`service:Operation`) a function's code calls.
pub fn calls(f: Function) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ITEM_PATH.to_vec();
    v.push("events:PutEvents");
    match f {
        // A webhook never lists: one token read, one item read, one write.
        Function::Webhook => {}
        // It seals the tokens it is given and opens them to verify and run tasks.
        // `POST /v1/tasks/export` sweeps the dead-letter queue as the schedule does.
        Function::Api => v.extend([
            "dynamodb:Query",
            "ssm:GetParameter",
            "kms:Encrypt",
            "kms:Decrypt",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
        ]),
        // The event source mapping receives and deletes on push's behalf.
        Function::Push => v.extend([
            "dynamodb:Query",
            "kms:Decrypt",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        ]),
        Function::Import => v.extend(["dynamodb:Query", "kms:Decrypt"]),
        // It sweeps the push dead-letter queue.
        Function::Export => v.extend([
            "dynamodb:Query",
            "kms:Decrypt",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
        ]),
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// The IAM actions an SDK operation needs. A TransactWriteItems is authorized per
/// operation inside it: ours hold puts, updates and deletes (never condition checks
/// alone). Reading a SecureString with decryption also needs `kms:Decrypt` (granted
/// through SSM only).
pub fn iam_actions(call: &'static str) -> Vec<&'static str> {
    match call {
        "dynamodb:TransactWriteItems" => {
            vec![
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ]
        }
        "ssm:GetParameter" => vec!["ssm:GetParameter", "kms:Decrypt"],
        other => vec![other],
    }
}

/// Every IAM action a function needs, sorted.
pub fn needed_actions(f: Function) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = calls(f).into_iter().flat_map(iam_actions).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_and_secrets_expand() {
        let w = needed_actions(Function::Webhook);
        assert!(
            !w.contains(&"dynamodb:TransactWriteItems"),
            "no such IAM action"
        );
        assert!(w.contains(&"dynamodb:PutItem"));
        assert!(!w.contains(&"dynamodb:Query"), "a webhook never lists");
        assert!(needed_actions(Function::Api).contains(&"kms:Decrypt"));
        assert!(needed_actions(Function::Push).contains(&"kms:Decrypt"));
        assert!(!needed_actions(Function::Webhook)
            .iter()
            .any(|a| a.starts_with("kms:")));
        assert!(!needed_actions(Function::Push).contains(&"kms:Encrypt"));
    }
}
