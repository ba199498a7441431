//! The OpenAPI document, served at `/v1/openapi.json`, generated from the handlers' annotations and
//! the types' own schemas (`ledger_core::openapi`), so it cannot list a route the router does not
//! have (a test checks the reverse) nor describe a field the JSON does not carry.
//!
//! It is a contract a client can be generated from: every request body and answer has its schema,
//! every path parameter its pattern or bounds, every operation lists the statuses the middleware can
//! answer (429 rate limit, 503 overload or timeout) besides its own, and the limits of this node's
//! configuration (largest batch) are in the document it serves. The API contract test runs
//! schemathesis against a real node with this document.

use axum::Json;
use axum::extract::State;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Ref, RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{OpenApi, ToSchema};

use super::{ApiContext, routes};
use crate::config::ApiConfig;

/// Every error answer's shape: a code, a sentence, and the error's typed fields beside them (e.g.
/// `have` and `need` of `insufficient_funds`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `nonce_too_low`, `not_found`, `invalid_field`.
    code: String,
    /// One human sentence.
    message: String,
}

/// One Server-Sent Event of `/v1/events`: its name, and its data as JSON text.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ServerSentEvent {
    event: EventName,
    /// The event as JSON: `block` {type, height, hash, timestamp_ms, proposer, tx_count}, `tx`
    /// {type, hash, height, index}, `lagged` {skipped} (this subscriber fell behind by `skipped`
    /// events).
    data: String,
}

/// The name of a `/v1/events` event.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum EventName {
    Block,
    Tx,
    Lagged,
    Error,
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "ledger-node API",
        description = "A minimal BFT ledger node: submit signed transfers, read blocks, transactions, \
            accounts and their transaction history, validators, peers, and follow new blocks as \
            Server-Sent Events. Every error is JSON `{code, message, ...fields}`. Amounts are \
            integers of base units; `/v1/status` names the display unit. Integers are read in \
            integer spelling only (`5`, not `5.0`: a float cannot hold every u64). How to sign a \
            transfer, hash it and derive an address: docs/WIRE.md."
    ),
    paths(
        routes::submit_tx,
        routes::submit_batch,
        routes::get_tx,
        routes::get_tx_proof,
        routes::get_account,
        routes::get_account_proof,
        routes::get_account_txs,
        routes::get_block,
        routes::get_latest_block,
        routes::get_block_by_hash,
        routes::get_blocks,
        routes::status,
        routes::validators,
        routes::genesis,
        routes::peers,
        routes::events,
        routes::metrics,
    ),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// The answers every operation can get from the middleware, whatever the handler does.
const MIDDLEWARE_ANSWERS: [(&str, &str); 2] = [
    (
        "429",
        "rate_limited: the node's request rate limit (`api.rate_limit_per_sec`)",
    ),
    (
        "503",
        "overloaded / timeout: too many requests at once, or one took longer than `api.request_timeout_ms`",
    ),
];

/// What every operation with a request body can also get: its body too large for
/// `api.max_body_bytes`, or too slow.
const BODY_ANSWERS: [(&str, &str); 2] = [
    (
        "408",
        "body_timeout: the body did not arrive within `api.request_timeout_ms`",
    ),
    ("413", "body_too_large: above `api.max_body_bytes`"),
];

/// The document for a node configured with `config`.
pub fn document(config: &ApiConfig) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ];
        for op in operations.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let answers = MIDDLEWARE_ANSWERS
                .iter()
                .chain(BODY_ANSWERS.iter().filter(|_| has_body));
            for (status, description) in answers {
                // The handler's own description of a status, where it has one, stays.
                op.responses
                    .responses
                    .entry((*status).to_owned())
                    .or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(*description)
                            .content(
                                "application/json",
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                                    .build(),
                            )
                            .into()
                    });
            }
        }
    }
    // This node's largest batch.
    if let Some(body) = doc
        .paths
        .paths
        .get_mut("/v1/transactions/batch")
        .and_then(|item| item.post.as_mut())
        .and_then(|op| op.request_body.as_mut())
    {
        let RefOr::T(body) = body else {
            return doc;
        };
        for content in body.content.values_mut() {
            let RefOr::T(content) = content else { continue };
            if let Some(RefOr::T(Schema::Array(array))) = content.schema.as_mut() {
                array.max_items = Some(config.max_batch_txs);
            }
        }
    }
    doc
}

pub async fn serve(State(ctx): State<ApiContext>) -> Json<utoipa::openapi::OpenApi> {
    Json(document(&ctx.limits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(document(&ApiConfig::default())).expect("document serializes")
    }

    /// Resolves `#/components/schemas/X` references.
    fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                let target = &doc["components"]["schemas"][name];
                assert!(target.is_object(), "dangling reference {r}");
                resolve(doc, target)
            }
            None => schema,
        }
    }

    #[test]
    fn every_answer_body_and_path_parameter_is_described() {
        let doc = doc();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let what = format!("{method} {path}");
                for (status, response) in op["responses"].as_object().expect("responses") {
                    let content = response["content"].as_object();
                    let content = content.unwrap_or_else(|| panic!("{what} {status}: no content"));
                    for (kind, media) in content {
                        let schema = resolve(&doc, &media["schema"]);
                        assert!(
                            schema.is_object() && schema != &Value::Object(Default::default()),
                            "{what} {status} {kind}: no schema"
                        );
                    }
                    checked += 1;
                }
                for status in ["429", "503"] {
                    assert!(op["responses"].get(status).is_some(), "{what}: no {status}");
                }
                for param in op["parameters"].as_array().into_iter().flatten() {
                    let schema = resolve(&doc, &param["schema"]);
                    let name = &param["name"];
                    let bounded = schema.get("pattern").is_some()
                        || schema.get("maximum").is_some()
                        || schema.get("enum").is_some();
                    assert!(
                        bounded,
                        "{what} parameter {name}: no pattern or bounds: {schema}"
                    );
                }
                if let Some(body) = op.get("requestBody") {
                    assert_eq!(body["required"], Value::Bool(true), "{what}");
                    let schema = resolve(&doc, &body["content"]["application/json"]["schema"]);
                    assert!(schema.is_object(), "{what}: body without schema");
                    assert!(op["responses"].get("413").is_some(), "{what}: no 413");
                }
            }
        }
        assert!(checked > 40, "only {checked} answers checked");
    }

    #[test]
    fn request_bodies_are_the_signed_transaction_and_refuse_unknown_fields() {
        let doc = doc();
        let body = &doc["paths"]["/v1/transactions"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        let signed = resolve(&doc, body);
        assert_eq!(
            signed["additionalProperties"],
            Value::Bool(false),
            "{signed}"
        );
        let tx = resolve(&doc, &signed["properties"]["tx"]);
        assert_eq!(tx["additionalProperties"], Value::Bool(false), "{tx}");
        let required: Vec<&str> = tx["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // `memo` may be left out (it defaults to empty).
        assert_eq!(
            required,
            ["chain_id", "from", "to", "amount", "fee", "nonce"],
            "{tx}"
        );
        let amount = resolve(&doc, &tx["properties"]["amount"]);
        assert_eq!(amount["maximum"], serde_json::json!(u64::MAX), "{amount}");
        let to = resolve(&doc, &tx["properties"]["to"]);
        assert_eq!(to["format"], "ldg-address", "{to}");

        let batch = &doc["paths"]["/v1/transactions/batch"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"];
        assert_eq!(
            batch["maxItems"],
            serde_json::json!(ApiConfig::default().max_batch_txs),
            "{batch}"
        );
    }
}
