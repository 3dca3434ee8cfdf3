//! What comes in, parsed strictly: a CodeDeploy lifecycle hook's two ids, or an ECS-native
//! lifecycle hook's payload. ECS runs the blue/green, linear or canary deployment itself,
//! invokes the function at a lifecycle stage and reads its *return value*
//! (`{"hookStatus": …}`); there is no status API to call. See the ECS developer guide,
//! "Lambda hooks for Amazon ECS service deployments".

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use shared::error::NotForUs;
use shared::invocation::ecs_hook::Unreadable;
use shared::invocation::hook::HookIds;

/// What the validator is asked to answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Meant as an ECS-native hook invocation, read or not: either way it is answered with a
    /// `hookStatus`, because ECS rolls back on anything else.
    Ecs(Result<EcsHookEvent, Unreadable>),
    CodeDeploy(HookIds),
}

/// The input as one of the hooks, or why it is neither (without both ids there is nothing to
/// report to).
pub fn parse(event: &Value) -> Result<Input, NotForUs> {
    if looks_like_ecs_hook(event) {
        let hook = parse_ecs_hook(event).map_err(|why| Unreadable {
            why,
            key: unreadable_key(event),
        });
        return Ok(Input::Ecs(hook));
    }
    parse_hook_ids(event).map(Input::CodeDeploy)
}

/// The two ids CodeDeploy sends, or why the input is not a hook invocation.
pub fn parse_hook_ids(event: &Value) -> Result<HookIds, NotForUs> {
    let empty = serde_json::Map::new();
    let fields = event.as_object().unwrap_or(&empty);
    Ok(HookIds {
        deployment_id: text(fields, "DeploymentId")?,
        hook_execution_id: text(fields, "LifecycleEventHookExecutionId")?,
    })
}

/// What an unreadable ECS-native invocation's post is remembered by.
fn unreadable_key(event: &Value) -> String {
    // Posted once per deployment and stage when the payload names them. Without a
    // deployment nothing names the hook across invocations; FAILED ends it, so
    // there is no callback for the invocation's own id to repeat across.
    let field = |name| event.get(name).and_then(Value::as_str);
    let key = match (field("resourceArn"), field("executionId")) {
        (Some(deployment), _) => format!(
            "{deployment}/{}",
            field("lifecycleStage").unwrap_or("(no lifecycleStage)")
        ),
        (None, Some(execution)) => execution.to_owned(),
        (None, None) => "(no resourceArn or executionId)".to_owned(),
    };
    let key = key.chars().take(512).collect::<String>();
    format!("{key}/unreadable")
}

/// Ids and ARNs are a few hundred characters at most (CodeDeploy's hook execution ids, opaque
/// base64 tokens, are the longest).
const MAX_FIELD_LEN: usize = 2048;

/// An ECS-native hook invocation: what to check and where the deployment stands.
#[derive(Debug, Clone, PartialEq)]
pub struct EcsHookEvent {
    pub execution_id: String,
    pub stage: String,
    /// The service deployment (`resourceArn`), when sent.
    pub deployment_arn: Option<String>,
    pub service_arn: String,
    pub cluster: String,
    pub service: String,
    /// The green revision: what is being deployed (or, on rollback, rolled away from).
    pub target_revision: String,
    pub test_weights: BTreeMap<String, f64>,
    pub production_weights: BTreeMap<String, f64>,
    /// Configured on the service's hook, or returned by an earlier `IN_PROGRESS`.
    pub hook_details: Map<String, Value>,
}

/// Whether the input is meant to be an ECS-native hook invocation (even a malformed one):
/// then it must get a `hookStatus`, because ECS rolls back on anything else.
pub fn looks_like_ecs_hook(event: &Value) -> bool {
    event.get("lifecycleStage").is_some() || event.get("executionDetails").is_some()
}

/// A required, non-blank string field of either hook payload, trimmed.
fn text(from: &Map<String, Value>, name: &str) -> Result<String, NotForUs> {
    match from.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_FIELD_LEN => {
            Ok(s.trim().to_owned())
        }
        Some(Value::String(_)) => Err(NotForUs(format!("{name} is blank or too long"))),
        Some(_) => Err(NotForUs(format!("{name} is not a string"))),
        None => Err(NotForUs(format!("{name} is missing"))),
    }
}

/// Revision ARN → percent. Absent means no weights were sent; a non-object or a weight that
/// is not a number is an error, not a guess.
fn weights(from: &Map<String, Value>, name: &str) -> Result<BTreeMap<String, f64>, NotForUs> {
    match from.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(revision, weight)| match weight.as_f64() {
                Some(w) if (0.0..=100.0).contains(&w) => Ok((revision.clone(), w)),
                _ => Err(NotForUs(format!(
                    "{name} has a weight that is not 0 to 100"
                ))),
            })
            .collect(),
        Some(_) => Err(NotForUs(format!("{name} is not an object"))),
    }
}

/// `arn:<partition>:ecs:<region>:<account>:service/<cluster>/<service>`; the older
/// `service/<service>` form has no cluster, which then comes from the deployment ARN
/// (`service-deployment/<cluster>/<service>/<id>`).
fn service_names(
    service_arn: &str,
    deployment_arn: Option<&str>,
) -> Result<(String, String), NotForUs> {
    let resource = |arn: &str| arn.splitn(6, ':').nth(5).map(str::to_owned);
    let not_service = || NotForUs("serviceArn is not an ECS service ARN".into());
    if !service_arn.starts_with("arn:") || !service_arn.contains(":ecs:") {
        return Err(not_service());
    }
    let deployment = deployment_arn.and_then(resource);
    let resource = resource(service_arn).ok_or_else(not_service)?;
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        ["service", cluster, service] if !cluster.is_empty() && !service.is_empty() => {
            Ok(((*cluster).to_owned(), (*service).to_owned()))
        }
        ["service", service] if !service.is_empty() => {
            let cluster = deployment
                .and_then(|r| {
                    let p: Vec<&str> = r.split('/').collect();
                    match p.as_slice() {
                        ["service-deployment", cluster, ..] => Some((*cluster).to_owned()),
                        _ => None,
                    }
                })
                .unwrap_or_else(|| "default".to_owned());
            Ok((cluster, (*service).to_owned()))
        }
        _ => Err(not_service()),
    }
}

/// The published payload nests the deployment under `executionDetails`; an older version of
/// the documentation showed the same fields at the top level. Both are accepted.
pub fn parse_ecs_hook(event: &Value) -> Result<EcsHookEvent, NotForUs> {
    let Value::Object(top) = event else {
        return Err(NotForUs("the payload is not a JSON object".into()));
    };
    let details = match top.get("executionDetails") {
        Some(Value::Object(d)) => d,
        Some(_) => return Err(NotForUs("executionDetails is not an object".into())),
        None => top,
    };
    let deployment_arn = match top.get("resourceArn") {
        Some(Value::String(s)) if s.len() <= MAX_FIELD_LEN => Some(s.clone()),
        _ => None,
    };
    let service_arn = text(details, "serviceArn")?;
    let (cluster, service) = service_names(&service_arn, deployment_arn.as_deref())?;
    let hook_details = match top.get("hookDetails") {
        Some(Value::Object(d)) => d.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(NotForUs("hookDetails is not an object".into())),
    };
    Ok(EcsHookEvent {
        execution_id: text(top, "executionId")?,
        stage: text(top, "lifecycleStage")?,
        deployment_arn,
        service_arn,
        cluster,
        service,
        target_revision: text(details, "targetServiceRevisionArn")?,
        test_weights: weights(details, "testTrafficWeights")?,
        production_weights: weights(details, "productionTrafficWeights")?,
        hook_details,
    })
}

impl EcsHookEvent {
    /// ECS invokes the traffic-shift hooks again when it rolls back, with the green
    /// revision's weight going to 0 (production weights at `PRODUCTION_TRAFFIC_SHIFT`, test
    /// weights at `TEST_TRAFFIC_SHIFT`). Only an explicit 0 counts: a revision missing from
    /// the weights says nothing.
    pub fn is_rollback(&self) -> bool {
        let weights = match self.stage.as_str() {
            "PRODUCTION_TRAFFIC_SHIFT" => &self.production_weights,
            "TEST_TRAFFIC_SHIFT" => &self.test_weights,
            _ => return false,
        };
        weights.get(&self.target_revision) == Some(&0.0)
    }

    /// The service deployment (`resourceArn`), when it is one and names this hook's service:
    /// `arn:<partition>:ecs:<region>:<account>:service-deployment/<cluster>/<service>/<id>`.
    /// It is what ties the callbacks of one hook together (the ECS guide promises
    /// `hookDetails` within a deployment, and nothing about `executionId` across callbacks);
    /// without it no bake state is trusted or carried.
    pub fn service_deployment(&self) -> Option<&str> {
        let arn = self.deployment_arn.as_deref()?;
        if arn.is_empty() || !arn.chars().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, "ecs", region, account, resource] = parts.as_slice() else {
            return None;
        };
        let resource: Vec<&str> = resource.split('/').collect();
        let ["service-deployment", cluster, service, id] = resource.as_slice() else {
            return None;
        };
        let named = [partition, region, account, id]
            .iter()
            .all(|p| !p.is_empty());
        (named && *cluster == self.cluster && *service == self.service).then_some(arn)
    }

    /// The service deployment's own id (the ARN's last segment), for people.
    pub fn deployment_id(&self) -> Option<&str> {
        self.service_deployment()?.rsplit('/').next()
    }

    /// The green revision's production weight, for messages about linear/canary steps.
    pub fn production_weight(&self) -> Option<f64> {
        self.production_weights.get(&self.target_revision).copied()
    }

    /// The region in the service ARN: where the console link should point.
    pub fn region(&self) -> Option<&str> {
        self.service_arn.split(':').nth(3).filter(|r| !r.is_empty())
    }

    /// The revision's own id (the ARN's last segment), for people.
    pub fn revision_id(&self) -> &str {
        self.target_revision
            .rsplit('/')
            .next()
            .unwrap_or(&self.target_revision)
    }

    /// A set named in the service's `hookDetails` (`{"checkSet": "prod-api"}`).
    pub fn named_check_set(&self) -> Option<&str> {
        self.hook_details.get("checkSet").and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GREEN: &str = "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/9313423515462893900";
    const BLUE: &str = "arn:aws:ecs:us-west-2:123456789012:service-revision/my-cluster/my-service/1920498462936580504";

    fn nested(stage: &str, green_weight: u32) -> Value {
        json!({
            "executionId": "f4fcae0f-9bec-41c6-ba87-0eaa0cef8af5",
            "lifecycleStage": stage,
            "resourceArn": "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5RNVLH6PPzHXINuP28",
            "executionDetails": {
                "serviceArn": "arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service",
                "targetServiceRevisionArn": GREEN,
                "testTrafficWeights": {},
                "productionTrafficWeights": {GREEN: green_weight, BLUE: 100 - green_weight}
            },
            "hookDetails": {"checkSet": "prod-api"}
        })
    }

    #[test]
    fn the_published_payload_and_the_older_flat_one_read_the_same() {
        let hook = parse_ecs_hook(&nested("PRODUCTION_TRAFFIC_SHIFT", 100)).unwrap();
        assert_eq!(
            (hook.cluster.as_str(), hook.service.as_str()),
            ("my-cluster", "my-service")
        );
        assert_eq!(hook.revision_id(), "9313423515462893900");
        assert_eq!(hook.named_check_set(), Some("prod-api"));
        let mut flat = nested("PRODUCTION_TRAFFIC_SHIFT", 100);
        let details = flat["executionDetails"].take();
        let top = flat.as_object_mut().unwrap();
        top.remove("executionDetails");
        for (k, v) in details.as_object().unwrap() {
            top.insert(k.clone(), v.clone());
        }
        assert_eq!(parse_ecs_hook(&flat).unwrap(), hook);
    }

    #[test]
    fn a_rollback_is_the_green_weight_going_to_zero_at_a_traffic_shift() {
        assert!(
            parse_ecs_hook(&nested("PRODUCTION_TRAFFIC_SHIFT", 0))
                .unwrap()
                .is_rollback()
        );
        assert!(
            !parse_ecs_hook(&nested("PRODUCTION_TRAFFIC_SHIFT", 10))
                .unwrap()
                .is_rollback()
        );
        // Before production traffic shifts, green has no production weight: not a rollback.
        assert!(
            !parse_ecs_hook(&nested("POST_TEST_TRAFFIC_SHIFT", 0))
                .unwrap()
                .is_rollback()
        );
        let mut test_shift = nested("TEST_TRAFFIC_SHIFT", 0);
        test_shift["executionDetails"]["testTrafficWeights"] = json!({GREEN: 0, BLUE: 100});
        assert!(parse_ecs_hook(&test_shift).unwrap().is_rollback());
    }

    #[test]
    fn an_old_style_service_arn_takes_its_cluster_from_the_deployment() {
        let mut e = nested("POST_TEST_TRAFFIC_SHIFT", 0);
        e["executionDetails"]["serviceArn"] =
            json!("arn:aws:ecs:us-west-2:123456789012:service/my-service");
        let hook = parse_ecs_hook(&e).unwrap();
        assert_eq!(
            (hook.cluster.as_str(), hook.service.as_str()),
            ("my-cluster", "my-service")
        );
    }

    /// `resourceArn` names the service deployment (ECS guide); it binds the bake state, so
    /// only a service-deployment ARN of this very service counts.
    #[test]
    fn only_a_service_deployment_of_this_service_names_the_deployment() {
        let hook = parse_ecs_hook(&nested("POST_PRODUCTION_TRAFFIC_SHIFT", 100)).unwrap();
        assert_eq!(
            hook.service_deployment(),
            Some(
                "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5RNVLH6PPzHXINuP28"
            )
        );
        assert_eq!(hook.deployment_id(), Some("EZe5RNVLH6PPzHXINuP28"));
        for unusable in [
            json!(null),
            json!(""),
            json!(7),
            json!("EZe5RNVLH6PPzHXINuP28"),
            json!("arn:aws:ecs:us-west-2:123456789012:service/my-cluster/my-service"),
            json!(
                "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/other-service/EZe5"
            ),
            json!(
                "arn:aws:ecs:us-west-2:123456789012:service-deployment/other-cluster/my-service/EZe5"
            ),
            json!("arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/"),
            json!(
                "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5/x"
            ),
            json!(
                "arn:aws:ecs:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5 "
            ),
            json!(
                "arn:aws:lambda:us-west-2:123456789012:service-deployment/my-cluster/my-service/EZe5"
            ),
        ] {
            let mut e = nested("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
            e["resourceArn"] = unusable.clone();
            let hook = parse_ecs_hook(&e).unwrap();
            assert_eq!(hook.service_deployment(), None, "{unusable}");
        }
        let mut absent = nested("POST_PRODUCTION_TRAFFIC_SHIFT", 100);
        absent.as_object_mut().unwrap().remove("resourceArn");
        assert_eq!(parse_ecs_hook(&absent).unwrap().service_deployment(), None);
    }

    #[test]
    fn malformed_payloads_say_what_is_wrong() {
        for (change, expect) in [
            (json!({"executionId": 7}), "executionId is not a string"),
            (json!({"lifecycleStage": ""}), "lifecycleStage is blank"),
            (
                json!({"executionDetails": []}),
                "executionDetails is not an object",
            ),
            (json!({"hookDetails": "x"}), "hookDetails is not an object"),
        ] {
            let mut e = nested("POST_TEST_TRAFFIC_SHIFT", 0);
            for (k, v) in change.as_object().unwrap() {
                e[k] = v.clone();
            }
            let err = parse_ecs_hook(&e).unwrap_err();
            assert!(err.0.contains(expect), "{change}: {}", err.0);
        }
        let mut bad_arn = nested("POST_TEST_TRAFFIC_SHIFT", 0);
        bad_arn["executionDetails"]["serviceArn"] = json!("my-service");
        assert!(parse_ecs_hook(&bad_arn).is_err());
        let mut bad_weight = nested("PRODUCTION_TRAFFIC_SHIFT", 0);
        bad_weight["executionDetails"]["productionTrafficWeights"][GREEN] = json!("all");
        assert!(parse_ecs_hook(&bad_weight).is_err());
        assert!(parse_ecs_hook(&json!([1])).is_err());
    }
}
