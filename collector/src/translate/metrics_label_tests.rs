//! Label tests of the OTLP metrics translation: attribute sanitizing and collisions,
//! precedence, promotion, `target_info`, series merging.

use super::*;

#[test]
fn colliding_attribute_names_join_values_in_key_order() {
    let (series, dropped) = run(vec![metric(
        "g",
        "",
        gauge(vec![num(
            &[
                ("a_b", "underscore"),
                ("a.b", "dot"),
                ("a-b", "dash"),
                ("c", ""),
            ],
            T,
            1.0,
        )]),
    )]);
    assert!(dropped.is_empty());
    // '-' < '.' < '_'
    assert_eq!(
        value(
            &series,
            &[("__name__", "g"), ("a_b", "dash;dot;underscore")]
        ),
        1.0
    );
}

#[test]
fn label_precedence() {
    let resource = [
        ("service.name", "svc"),
        ("k8s.pod.name", "from-resource"),
        ("host.name", "node-1"),
    ];
    let point = num(
        &[
            ("k8s.pod.name", "from-point"),
            ("job", "from-point"),
            ("otel_scope_name", "x"),
            ("__name__", "evil"),
        ],
        T,
        1.0,
    );
    let (series, _) = run_with(
        vec![resource_metrics(
            &resource,
            vec![metric("g", "", gauge(vec![point]))],
        )],
        &TranslateOptions::default(),
    );
    let g = series
        .iter()
        .find(|s| s.labels.metric_name() == Some("g"))
        .unwrap();
    assert_eq!(
        g.labels,
        Labels::from_pairs([
            ("__name__", "g"),
            ("_name_", "evil"),
            ("k8s_pod_name", "from-point"),
            ("host_name", "node-1"),
            ("job", "svc"),
            ("otel_scope_name", "io.app"),
            ("otel_scope_version", "1.0"),
        ])
    );
    // target_info needs job or instance: here job=svc
    let info = series
        .iter()
        .find(|s| s.labels.metric_name() == Some("target_info"))
        .unwrap();
    assert_eq!(info.labels.get("k8s_pod_name"), Some("from-resource"));
    assert_eq!(info.labels.get("host_name"), Some("node-1"));
    assert_eq!(info.labels.get("job"), Some("svc"));
}

#[test]
fn promoted_attributes_are_configurable() {
    let resource = [
        ("service.name", "svc"),
        ("k8s.pod.name", "p"),
        ("custom.team", "payments"),
    ];
    let opts = TranslateOptions {
        promote_resource_attributes: vec!["custom.team".into()],
        ..Default::default()
    };
    let (series, _) = run_with(
        vec![resource_metrics(
            &resource,
            vec![metric("g", "", gauge(vec![num(&[], T, 1.0)]))],
        )],
        &opts,
    );
    let g = series
        .iter()
        .find(|s| s.labels.metric_name() == Some("g"))
        .unwrap();
    assert_eq!(g.labels.get("custom_team"), Some("payments"));
    assert_eq!(g.labels.get("k8s_pod_name"), None);
}

#[test]
fn target_info_rules() {
    let later = T + 5_000_000;
    let rms = vec![
        // no job/instance: no target_info
        resource_metrics(
            &[("host.name", "h")],
            vec![metric("a", "", gauge(vec![num(&[], T, 1.0)]))],
        ),
        // latest timestamp of the resource, across metrics
        resource_metrics(
            &[("service.name", "s2"), ("os.type", "linux")],
            vec![
                metric("b", "", gauge(vec![num(&[], later, 1.0)])),
                metric("c", "", gauge(vec![num(&[], T, 1.0)])),
            ],
        ),
        // no samples: no target_info
        resource_metrics(&[("service.name", "s3"), ("os.type", "linux")], vec![]),
    ];
    let (series, dropped) = run_with(rms, &TranslateOptions::default());
    assert!(dropped.is_empty());
    let infos: Vec<_> = series
        .iter()
        .filter(|s| s.labels.metric_name() == Some("target_info"))
        .collect();
    assert_eq!(infos.len(), 1);
    assert_eq!(
        infos[0].labels,
        Labels::from_pairs([
            ("__name__", "target_info"),
            ("job", "s2"),
            ("os_type", "linux")
        ])
    );
    assert_eq!(
        infos[0].samples,
        vec![Sample {
            timestamp_ms: T_MS + 5,
            value: 1.0
        }]
    );
}

#[test]
fn points_of_one_series_merge_in_time_order_and_resources_stay_apart() {
    let m = || {
        metric(
            "g",
            "",
            gauge(vec![num(&[], T + 2_000_000, 2.0), num(&[], T, 1.0)]),
        )
    };
    let rms = vec![
        resource_metrics(&[("service.name", "a")], vec![m()]),
        resource_metrics(&[("service.name", "b")], vec![m()]),
    ];
    let (series, _) = run_with(rms, &TranslateOptions::default());
    assert_eq!(series.len(), 2);
    for s in &series {
        assert_eq!(
            s.samples,
            vec![
                Sample {
                    timestamp_ms: T_MS,
                    value: 1.0
                },
                Sample {
                    timestamp_ms: T_MS + 2,
                    value: 2.0
                }
            ]
        );
    }
    assert_ne!(series[0].labels.get("job"), series[1].labels.get("job"));
}

#[test]
fn non_string_attribute_values_become_label_strings() {
    let p = NumberDataPoint {
        attributes: vec![
            KeyValue {
                key: "code".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::IntValue(503)),
                }),
                key_strindex: 0,
            },
            KeyValue {
                key: "ok".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::BoolValue(false)),
                }),
                key_strindex: 0,
            },
            KeyValue {
                key: "ratio".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(0.5)),
                }),
                key_strindex: 0,
            },
        ],
        ..num(&[], T, 1.0)
    };
    let (series, _) = run(vec![metric("g", "", gauge(vec![p]))]);
    assert_eq!(
        value(
            &series,
            &[
                ("__name__", "g"),
                ("code", "503"),
                ("ok", "false"),
                ("ratio", "0.5")
            ]
        ),
        1.0
    );
}

#[test]
fn empty_request() {
    let (series, dropped) = run_with(vec![], &TranslateOptions::default());
    assert!(series.is_empty() && dropped.is_empty());
}
