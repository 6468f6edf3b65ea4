//! Model format: the bundled example parses and matches `train.py`'s integer semantics; bad
//! documents are refused with a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sealroom_fhe::example::{digits, digits_model, parse_digits};
use sealroom_fhe::model::{argmax, Model};
use sealroom_fhe::FheError;

#[test]
fn bundled_model_matches_training_accuracy() {
    let model = digits_model().unwrap();
    let data = digits().unwrap();
    assert_eq!(data.train.len(), 1437);
    assert_eq!(data.test.len(), 360);
    let correct = data
        .test
        .iter()
        .filter(|s| argmax(&model.forward(&s.input()).unwrap()) == usize::from(s.label))
        .count();
    let acc = correct as f64 / data.test.len() as f64;
    let expected = model.doc().metadata["quantized_test_accuracy"]
        .as_f64()
        .unwrap();
    // Python and Rust implement the same integer semantics: the accuracy is identical.
    assert!(
        (acc - expected).abs() < 1e-3,
        "rust {acc} vs train.py {expected}"
    );
    assert!(acc > 0.9);
    assert_eq!(model.allowed_splits(), vec![2, 4]);
}

fn doc(layers: &str, max: usize) -> String {
    format!(
        r#"{{"format":"sealroom-fhe-model","version":1,"name":"t","input":{{"shape":[1,2,2],"bits":4}},"layers":{layers},"max_encrypted_layers":{max}}}"#
    )
}

const DENSE: &str =
    r#"{"type":"dense","inputs":4,"outputs":2,"weights":[1,2,3,4,5,6,7,8],"bias":[0,1]}"#;
const RELU: &str = r#"{"type":"relu","mult":1,"shift":0,"bits":4,"range":[-10,100]}"#;

fn err(json: &str) -> String {
    match Model::from_json(json.as_bytes()) {
        Err(FheError::InvalidModel(m)) | Err(FheError::InvalidSplit(m)) => m,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn small_model_forward() {
    let m = Model::from_json(doc(&format!("[{DENSE},{RELU}]"), 2).as_bytes()).unwrap();
    // y0 = 1+4+9+16 = 30 ... with x = [1,2,3,4]: y0 = 1+4+9+16 = 30, y1 = 5+12+21+32+1 = 71.
    assert_eq!(m.forward_range(0, 1, &[1, 2, 3, 4]).unwrap(), vec![30, 71]);
    assert_eq!(m.forward(&[1, 2, 3, 4]).unwrap(), vec![15, 15]);
    assert!(m.forward(&[1, 2, 3, 16]).is_err());
    assert!(m.forward(&[1, 2, 3]).is_err());
}

#[test]
fn conv_and_pool() {
    let conv = r#"{"type":"conv2d","in_channels":1,"out_channels":1,"kernel":2,"stride":1,"padding":0,"weights":[1,1,1,1],"bias":[0]}"#;
    let pool = r#"{"type":"avg_pool","kernel":1,"stride":1}"#;
    let m = Model::from_json(doc(&format!("[{conv},{pool},{RELU}]"), 3).as_bytes()).unwrap();
    assert_eq!(m.forward_range(0, 2, &[1, 2, 3, 4]).unwrap(), vec![10]);
}

#[test]
fn bad_documents_are_refused_clearly() {
    assert!(err("{").contains("not a model document"));
    assert!(err(&doc("[]", 0)).contains("1 to 64 layers"));
    let wrong = DENSE.replace("\"inputs\":4", "\"inputs\":5");
    assert!(err(&doc(&format!("[{wrong}]"), 0)).contains("previous tensor has 4 values"));
    let short = DENSE.replace("[1,2,3,4,5,6,7,8]", "[1,2,3]");
    assert!(err(&doc(&format!("[{short}]"), 0)).contains("expected 8 weights"));
    let big = DENSE.replace("[1,2,3,4,5,6,7,8]", "[1,2,3,4,5,6,7,99999]");
    assert!(err(&doc(&format!("[{big}]"), 0)).contains("weights must be within"));
    // A split must end with a relu.
    let dense2 = r#"{"type":"dense","inputs":2,"outputs":2,"weights":[1,2,3,4],"bias":[0,0]}"#;
    assert!(err(&doc(&format!("[{DENSE},{RELU},{dense2}]"), 3)).contains("must end with a relu"));
    let unknown = doc(&format!("[{DENSE}]"), 0).replace("\"name\"", "\"extra\":1,\"name\"");
    assert!(err(&unknown).contains("unknown field"));
    let bad_range = RELU.replace("[-10,100]", "[100,-10]");
    assert!(err(&doc(&format!("[{DENSE},{bad_range}]"), 2)).contains("lo < hi"));
}

#[test]
fn dataset_parser_refuses_bad_lines() {
    assert!(parse_digits("11,00").is_err());
    assert!(parse_digits(&format!("3,{}", "z".repeat(64))).is_err());
    assert_eq!(
        parse_digits(&format!("# c\n3,{}\n", "g".repeat(64)))
            .unwrap()
            .test
            .len(),
        1
    );
}
