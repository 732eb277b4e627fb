//! The plain-YAML reader (`palisade_engine::yaml_subset`) against the YAML library over every YAML
//! document of the upstream oracles (`$PALISADE_ORACLES`: Pod Security fixtures, gatekeeper-library,
//! Kyverno policies and tests, OPA conformance, VAP examples): where it reads a document, its value
//! is the library's, and it reads most of them.

mod common;

use serde_json::Value;

#[test]
fn every_oracle_document_read_in_the_subset_is_read_as_the_library_reads_it() {
    let Some(root) = common::oracle_dir(".") else {
        return;
    };
    let files = common::files_under(&root, |path| {
        path.extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
    });
    assert!(
        files.len() > 5_000,
        "only {} YAML files under {}",
        files.len(),
        root.display()
    );
    let (mut documents, mut read_here, mut bytes_here) = (0usize, 0usize, 0usize);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (line, document) in palisade_engine::source::split_documents(&text) {
            documents += 1;
            let Some(ours) = palisade_engine::yaml_subset::read(&document) else {
                continue;
            };
            let library: Result<Value, _> = serde_yaml_ng::from_str(&document);
            match library {
                Ok(library) => assert_eq!(
                    ours,
                    library,
                    "{}:{line}: read differently from the YAML library",
                    file.display()
                ),
                Err(err) => panic!(
                    "{}:{line}: read here, but the YAML library refuses it: {err}",
                    file.display()
                ),
            }
            read_here += 1;
            bytes_here += document.len();
        }
    }
    println!(
        "{read_here} of {documents} documents ({bytes_here} bytes) read in the subset, from {} files",
        files.len()
    );
    // Most manifests are plain YAML; a reader that gave up on them would be no faster.
    assert!(
        read_here * 10 >= documents * 6,
        "only {read_here} of {documents} documents read in the subset"
    );
}
