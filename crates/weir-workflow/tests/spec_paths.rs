//! Conformance: the ASL specification's examples of paths, payload templates, input and
//! output processing, and intrinsic functions, with the inputs and outputs the spec gives.

mod common;

use common::{failed_with, machine, Func, Script, Tasks};
use serde_json::{json, Value};
use weir_workflow::{apply_template, run, run_with, Outcome, RunOptions, TaskError};

/// Runs a one-state machine whose only state is `state`, with `tasks`.
async fn one_state(state: Value, tasks: &Tasks, input: Value) -> weir_workflow::Execution {
    let m = machine(json!({"StartAt": "S", "States": {"S": state}}));
    run(&m, tasks, input).await
}

async fn output(state: Value, input: Value) -> Value {
    let ex = one_state(state, &Tasks::new(), input).await;
    assert_eq!(ex.outcome, Outcome::Succeeded, "{:?}", ex.steps);
    ex.output
}

#[tokio::test]
async fn reference_paths() {
    // "Reference Paths": given this input, the paths return these values.
    let input = json!({"foo": 123, "bar": ["a", "b", "c"], "car": {"cdr": true}});
    for (path, expected) in
        [("$.foo", json!(123)), ("$.bar", json!(["a", "b", "c"])), ("$.car.cdr", json!(true))]
    {
        let out = output(json!({"Type": "Pass", "OutputPath": path, "End": true}), input.clone()).await;
        assert_eq!(out, expected, "{path}");
    }
}

#[tokio::test]
async fn payload_template() {
    // "Payload Template": the effective input of the Task, with a context object holding
    // DayOfWeek.
    let template = json!({
        "flagged": true,
        "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"},
        "weekday.$": "$$.DayOfWeek",
        "formattedOutput.$": "States.Format('Today is {}', $$.DayOfWeek)"
    });
    let input = json!({"flagged": 7, "vals": [0, 10, 20, 30, 40, 50]});
    let payload = apply_template(&template, &input, &json!({"DayOfWeek": "TUESDAY"})).unwrap();
    assert_eq!(
        payload,
        json!({
            "flagged": true,
            "parts": {"first": 0, "last3": [30, 40, 50]},
            "weekday": "TUESDAY",
            "formattedOutput": "Today is TUESDAY"
        })
    );

    // The same template as a Task's Parameters, with the real context object.
    let seen = Script::new(vec![], |v| v);
    let tasks = Tasks::new().with_arc("X", seen.clone());
    let m = machine(json!({"StartAt": "X", "States": {"X": {
        "Type": "Task", "Resource": "X", "End": true,
        "Parameters": {"flagged": true, "parts": {"first.$": "$.vals[0]", "last3.$": "$.vals[-3:]"},
                       "exec.$": "$$.Execution.Id", "state.$": "$$.State.Name",
                       "formattedOutput.$": "States.Format('Run {} in {}', $$.Execution.Id, $$.State.Name)"}}}}));
    let ex = run_with(&m, &tasks, input, RunOptions::new("exec-1")).await;
    assert_eq!(ex.outcome, Outcome::Succeeded);
    assert_eq!(
        seen.calls.lock().unwrap()[0].1,
        json!({"flagged": true, "parts": {"first": 0, "last3": [30, 40, 50]}, "exec": "exec-1", "state": "X",
               "formattedOutput": "Run exec-1 in X"})
    );
}

#[tokio::test]
async fn intrinsic_format_with_escaped_quote() {
    // "Intrinsic Functions": States.Format with \\' in the template.
    let out = apply_template(
        &json!({"greeting.$": "States.Format('Welcome to {} {}\\'s playlist.', $.firstName, $.lastName)"}),
        &json!({"firstName": "John", "lastName": "Doe"}),
        &json!({}),
    )
    .unwrap();
    assert_eq!(out, json!({"greeting": "Welcome to John Doe's playlist."}));
}

#[tokio::test]
async fn multiple_matches_are_gathered_into_an_array() {
    // `$.a[0,1]` applied to {"a": [1, 2, 3, 4]}: the state sees [1, 2].
    let out =
        output(json!({"Type": "Pass", "InputPath": "$.a[0,1]", "End": true}), json!({"a": [1, 2, 3, 4]}))
            .await;
    assert_eq!(out, json!([1, 2]));
    let out =
        output(json!({"Type": "Pass", "OutputPath": "$.a[0,1]", "End": true}), json!({"a": [1, 2, 3, 4]}))
            .await;
    assert_eq!(out, json!([1, 2]));
}

#[tokio::test]
async fn result_path_overwrites_or_builds_fields() {
    // "The ResultPath field's value ... given the raw input {"master": {"detail": [1, 2, 3]}}
    // and a result of 6".
    let input = json!({"master": {"detail": [1, 2, 3]}});
    let out = output(
        json!({"Type": "Pass", "Result": 6, "ResultPath": "$.master.detail", "End": true}),
        input.clone(),
    )
    .await;
    assert_eq!(out, json!({"master": {"detail": 6}}));
    let out =
        output(json!({"Type": "Pass", "Result": 6, "ResultPath": "$.master.result.sum", "End": true}), input)
            .await;
    assert_eq!(out, json!({"master": {"detail": [1, 2, 3], "result": {"sum": 6}}}));
}

#[tokio::test]
async fn null_paths() {
    let input = json!({"a": 1});
    // InputPath null: the effective input is {}.
    let out = output(
        json!({"Type": "Pass", "InputPath": null, "ResultPath": "$.seen", "End": true}),
        input.clone(),
    )
    .await;
    assert_eq!(out, json!({"a": 1, "seen": {}}));
    // ResultPath null: the result is discarded and the raw input passes on.
    let out =
        output(json!({"Type": "Pass", "Result": "x", "ResultPath": null, "End": true}), input.clone()).await;
    assert_eq!(out, input);
    // OutputPath null: the output is {}.
    let out = output(json!({"Type": "Pass", "OutputPath": null, "End": true}), input).await;
    assert_eq!(out, json!({}));
}

fn sum() -> Func<impl Fn(Value) -> Result<Value, TaskError>> {
    Func(|v: Value| Ok(json!(v["val1"].as_i64().unwrap() + v["val2"].as_i64().unwrap())))
}

#[tokio::test]
async fn input_output_processing_examples() {
    // "Input/Output Processing Examples": a Lambda that sums val1 and val2.
    let tasks = Tasks::new().with("arn:aws:lambda:us-east-1:123456789012:function:Add", sum());
    let ex = one_state(
        json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:Add",
               "InputPath": "$.numbers", "ResultPath": "$.sum", "End": true}),
        &tasks,
        json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}}),
    )
    .await;
    assert_eq!(ex.output, json!({"title": "Numbers to add", "numbers": {"val1": 3, "val2": 4}, "sum": 7}));

    // The task's output "Hi!" with ResultPath "$.b.greeting" on {"a": 1}.
    let tasks = Tasks::new().with("Hi", Func(|_| Ok(json!("Hi!"))));
    let ex = one_state(
        json!({"Type": "Task", "Resource": "Hi", "ResultPath": "$.b.greeting", "End": true}),
        &tasks,
        json!({"a": 1}),
    )
    .await;
    assert_eq!(ex.output, json!({"a": 1, "b": {"greeting": "Hi!"}}));
}

#[tokio::test]
async fn result_path_runtime_error() {
    // "Runtime Errors": input "foo" and ResultPath "$.x" fail with States.ResultPathMatchFailure.
    let tasks = Tasks::new().with("T", Func(|_| Ok(json!(1))));
    let ex = one_state(
        json!({"Type": "Task", "Resource": "T", "ResultPath": "$.x", "End": true}),
        &tasks,
        json!("foo"),
    )
    .await;
    assert_eq!(failed_with(&ex.outcome), Some("States.ResultPathMatchFailure"));
}

#[tokio::test]
async fn result_selector_and_the_step_functions_paths_example() {
    // The Step Functions guide's ResultSelector example (EMR createCluster.sync).
    let tasks = Tasks::new().with(
        "arn:aws:states:::elasticmapreduce:createCluster.sync",
        Func(|_| {
            Ok(json!({
                "resourceType": "elasticmapreduce",
                "resource": "createCluster.sync",
                "output": {
                    "SdkHttpMetadata": {"HttpHeaders": {"Content-Length": "1112"}, "HttpStatusCode": 200},
                    "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
                    "ClusterId": "AKIAIOSFODNN7EXAMPLE"
                }
            }))
        }),
    );
    let ex = one_state(
        json!({"Type": "Task", "Resource": "arn:aws:states:::elasticmapreduce:createCluster.sync",
               "ResultSelector": {"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
               "ResultPath": "$.EMROutput", "End": true}),
        &tasks,
        json!({"OtherDataFromInput": {}}),
    )
    .await;
    assert_eq!(
        ex.output,
        json!({"OtherDataFromInput": {}, "EMROutput": {"ClusterId": "AKIAIOSFODNN7EXAMPLE", "ResourceType": "elasticmapreduce"}})
    );

    // The guide's InputPath + ResultPath + OutputPath example ("HelloWorld").
    let tasks = Tasks::new().with(
        "arn:aws:lambda:region:123456789012:function:HelloFunction",
        Func(|v: Value| Ok(json!(format!("Hello, {}!", v["who"].as_str().unwrap())))),
    );
    let ex = one_state(
        json!({"Type": "Task", "Resource": "arn:aws:lambda:region:123456789012:function:HelloFunction",
               "InputPath": "$.lambda", "ResultPath": "$.data.lambdaresult", "OutputPath": "$.data", "End": true}),
        &tasks,
        json!({"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
               "lambda": {"who": "AWS Step Functions"}}),
    )
    .await;
    assert_eq!(ex.output, json!({"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}));
}

#[tokio::test]
async fn parameter_path_and_intrinsic_failures() {
    let tasks = Tasks::new().with("T", Func(Ok));
    let ex = one_state(
        json!({"Type": "Task", "Resource": "T", "Parameters": {"x.$": "$.missing"}, "End": true}),
        &tasks,
        json!({}),
    )
    .await;
    assert_eq!(failed_with(&ex.outcome), Some("States.ParameterPathFailure"));
    let ex = one_state(
        json!({"Type": "Task", "Resource": "T", "Parameters": {"x.$": "States.StringToJson($.s)"}, "End": true}),
        &tasks,
        json!({"s": "{not json"}),
    )
    .await;
    assert_eq!(failed_with(&ex.outcome), Some("States.IntrinsicFailure"));
}

/// Appendix B: each intrinsic function's example, as a payload template.
#[test]
fn appendix_b_intrinsic_functions() {
    let cases = [
        (
            json!({"foo.$": "States.Format('Your name is {}, we are in the year {}', $.name, 2020)"}),
            json!({"name": "Foo", "zebra": "stripe"}),
            json!({"foo": "Your name is Foo, we are in the year 2020"}),
        ),
        (
            json!({"foo.$": "States.StringToJson($.someString)"}),
            json!({"someString": "{\"number\": 20}", "zebra": "stripe"}),
            json!({"foo": {"number": 20}}),
        ),
        (
            json!({"foo.$": "States.JsonToString($.someJson)"}),
            json!({"someJson": {"name": "Foo", "year": 2020}, "zebra": "stripe"}),
            json!({"foo": "{\"name\":\"Foo\",\"year\":2020}"}),
        ),
        (
            json!({"foo.$": "States.Array('Foo', 2020, $.someJson, null)"}),
            json!({"someJson": {"random": "abcdefg"}, "zebra": "stripe"}),
            json!({"foo": ["Foo", 2020, {"random": "abcdefg"}, null]}),
        ),
        (
            json!({"inputArray.$": "States.ArrayPartition($.inputArray,4)"}),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
            json!({"inputArray": [[1, 2, 3, 4], [5, 6, 7, 8], [9]]}),
        ),
        (
            json!({"contains.$": "States.ArrayContains($.inputArray, $.lookingFor)"}),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}),
            json!({"contains": true}),
        ),
        (json!({"array.$": "States.ArrayRange(1, 9, 2)"}), json!({}), json!({"array": [1, 3, 5, 7, 9]})),
        (
            json!({"item.$": "States.ArrayGetItem($.inputArray, $.index)"}),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}),
            json!({"item": 6}),
        ),
        (
            json!({"length.$": "States.ArrayLength($.inputArray)"}),
            json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
            json!({"length": 9}),
        ),
        (
            json!({"array.$": "States.ArrayUnique($.inputArray)"}),
            json!({"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}),
            json!({"array": [1, 2, 3, 4]}),
        ),
        (
            json!({"base64.$": "States.Base64Encode($.input)"}),
            json!({"input": "Data to encode"}),
            json!({"base64": "RGF0YSB0byBlbmNvZGU="}),
        ),
        // The spec's example output here reads "Decoded data", which is not what its input
        // decodes to; this is the real decoding.
        (
            json!({"data.$": "States.Base64Decode($.base64)"}),
            json!({"base64": "RGF0YSB0byBlbmNvZGU="}),
            json!({"data": "Data to encode"}),
        ),
        // The spec prints this digest with one digit missing (39 hex digits); SHA-1 has 40.
        (
            json!({"output.$": "States.Hash($.Data, $.Algorithm)"}),
            json!({"Data": "input data", "Algorithm": "SHA-1"}),
            json!({"output": "aaff4a450a104cd177d28d18d74485e8cae074b7"}),
        ),
        (
            json!({"output.$": "States.JsonMerge($.json1, $.json2, false)"}),
            json!({"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}}),
            json!({"output": {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}}),
        ),
        (
            json!({"value1.$": "States.MathAdd($.value1, $.step)"}),
            json!({"value1": 111, "step": -1}),
            json!({"value1": 110}),
        ),
        (
            json!({"array.$": "States.StringSplit($.inputString, $.splitter)"}),
            json!({"inputString": "1,2,3,4,5", "splitter": ","}),
            json!({"array": ["1", "2", "3", "4", "5"]}),
        ),
    ];
    for (template, input, expected) in cases {
        assert_eq!(apply_template(&template, &input, &json!({})).unwrap(), expected, "{template}");
    }

    let hashes = apply_template(
        &json!({"md5.$": "States.Hash('input data', 'MD5')", "sha256.$": "States.Hash('input data', 'SHA-256')"}),
        &json!({}),
        &json!({}),
    )
    .unwrap();
    assert_eq!(hashes["md5"], "812f45842bc6d66ee14572ce20db8e86");
    assert_eq!(hashes["sha256"], "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3");

    let random = apply_template(
        &json!({"random.$": "States.MathRandom($.start, $.end)", "seeded.$": "States.MathRandom(1, 999, 7)",
                "again.$": "States.MathRandom(1, 999, 7)"}),
        &json!({"start": 1, "end": 999}),
        &json!({}),
    )
    .unwrap();
    assert!((1..999).contains(&random["random"].as_i64().unwrap()));
    assert_eq!(random["seeded"], random["again"], "the same seed gives the same number");

    let uuid = apply_template(&json!({"uuid.$": "States.UUID()"}), &json!({}), &json!({})).unwrap();
    let uuid = uuid["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.as_bytes()[14], b'4', "a version 4 UUID: {uuid}");
}
