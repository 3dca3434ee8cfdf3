//! The current CloudWatch SDK (rpcv2Cbor only) reaches moto's alarms through the stub.

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use standins::{Moto, RecordingStub};

#[tokio::test]
async fn alarms_set_in_moto_are_read_through_the_cbor_bridge() {
    let moto = Moto::start();
    let stub = RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    let cw =
        aws_sdk_cloudwatch::Client::new(&standins::moto::sdk_config_for(&stub.endpoint()).await);

    cw.put_metric_alarm()
        .alarm_name("api-5xx")
        .namespace("AWS/ApplicationELB")
        .metric_name("HTTPCode_Target_5XX_Count")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    let read = |cw: aws_sdk_cloudwatch::Client| async move {
        let out = cw
            .describe_alarms()
            .alarm_names("api-5xx")
            .send()
            .await
            .unwrap();
        let alarm = out.metric_alarms()[0].clone();
        (
            alarm.state_value().cloned(),
            alarm.threshold(),
            alarm.state_updated_timestamp().is_some(),
        )
    };
    let (state, threshold, stamped) = read(cw.clone()).await;
    assert_eq!(state, Some(StateValue::Ok), "moto starts new alarms in OK");
    assert_eq!(threshold, Some(5.0));
    assert!(stamped);

    cw.set_alarm_state()
        .alarm_name("api-5xx")
        .state_value(StateValue::Alarm)
        .state_reason("5xx spike")
        .send()
        .await
        .unwrap();
    assert_eq!(read(cw.clone()).await.0, Some(StateValue::Alarm));
    assert!(
        stub.calls().iter().any(
            |c| c.service == "GraniteServiceVersion20100801" && c.operation == "DescribeAlarms"
        )
    );

    let missing = cw
        .describe_alarms()
        .alarm_names("does-not-exist")
        .send()
        .await
        .unwrap();
    assert!(missing.metric_alarms().is_empty());
}
