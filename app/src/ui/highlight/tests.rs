use super::yaml::is_number;
use super::*;

/// `(text, class)` of every token, for reading.
fn spans(source: &str) -> Vec<(&str, &'static str)> {
    tokens(source)
        .into_iter()
        .map(|t| (&source[t.start..t.end], t.kind.class()))
        .collect()
}

#[test]
fn yaml_keys_values_and_comments() {
    let source = "apiVersion: v1 # the core group\nspec:\n  replicas: 3\n  - name: \"web\"\n    on: true\n---\n";
    assert_eq!(
        spans(source),
        vec![
            ("apiVersion", "t-key"),
            (":", "t-punct"),
            ("# the core group", "t-com"),
            ("spec", "t-key"),
            (":", "t-punct"),
            ("replicas", "t-key"),
            (":", "t-punct"),
            ("3", "t-num"),
            ("-", "t-punct"),
            ("name", "t-key"),
            (":", "t-punct"),
            ("\"web\"", "t-str"),
            ("on", "t-key"),
            (":", "t-punct"),
            ("true", "t-lit"),
            ("---", "t-meta"),
        ]
    );
    // A URL is not a key; a colon without a space is part of the value.
    assert_eq!(
        spans("image: nginx:1.27"),
        vec![("image", "t-key"), (":", "t-punct")]
    );
}

#[test]
fn cel_and_rego_are_drawn_in_their_own_language() {
    let vap = "validations:\n  - expression: \"has(object.spec) && object.spec.replicas <= 5\"\n    messageExpression: |\n      'too many: ' + string(object.spec.replicas)\n  - message: has(x) stays text\n";
    let got = spans(vap);
    assert!(got.contains(&("has", "t-fn")), "{got:?}");
    assert!(got.contains(&("5", "t-num")), "{got:?}");
    assert!(got.contains(&("'too many: '", "t-str")), "{got:?}");
    assert!(got.contains(&("string", "t-fn")), "{got:?}");
    assert!(got.contains(&("|", "t-meta")), "{got:?}");
    // `message` is not CEL: its words are not coloured as code.
    assert_eq!(
        got.iter().filter(|(t, _)| *t == "has").count(),
        1,
        "{got:?}"
    );

    let template = "spec:\n  targets:\n    - rego: |\n        package k8s\n        violation[{\"msg\": msg}] {\n          not input.review.object.spec # why\n        }\n    - target: x\n";
    let got = spans(template);
    for expected in [
        ("package", "t-kw"),
        ("not", "t-kw"),
        ("\"msg\"", "t-str"),
        ("# why", "t-com"),
        ("target", "t-key"),
    ] {
        assert!(got.contains(&expected), "{expected:?} in {got:?}");
    }
    // After the block, YAML again: `target` is a key, not Rego.
    assert!(!got.contains(&("target", "t-fn")));
}

#[test]
fn numbers_are_told_by_hand() {
    for yes in ["3", "-1.5", ".5", "5.", "2e10", "1.5E-3", "+7"] {
        assert!(is_number(yes), "{yes}");
    }
    for no in [
        "", "-", ".", "1.2.3", "e5", "1e", "12a", "v1", "0x1F", "inf", "nan",
    ] {
        assert!(!is_number(no), "{no}");
    }
}

#[test]
fn brackets_find_their_partner() {
    let text = "f(a[1], {b: (c)})";
    assert_eq!(matching_bracket(text, 2), Some((1, Some(16))));
    assert_eq!(matching_bracket(text, 17), Some((16, Some(1))));
    assert_eq!(matching_bracket(text, 4), Some((3, Some(5))));
    assert_eq!(matching_bracket("(a", 1), Some((0, None)));
    assert_eq!(matching_bracket("abc", 1), None);
}

#[test]
fn the_html_is_the_source_escaped_and_nothing_more() {
    let source = "name: \"<script>alert('x')</script>\" # </span><b>\nrego: |\n  x := `<i>`\n";
    let html = to_html(source, None, &[]);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<b>") && !html.contains("<i>"), "{html}");
    // Dropping the tags gives back the source, character for character.
    assert_eq!(unescape(&strip_tags(&html)), format!("{source}\n"));
    // Multibyte text and marks at any column keep the text whole.
    let source = "ünïcode: 'é' # ✓\nbad line\n";
    let marks = [
        Mark {
            line: 1,
            column: 3,
            warning: false,
        },
        Mark {
            line: 2,
            column: 99,
            warning: true,
        },
    ];
    let html = to_html(source, Some(0), &marks);
    assert_eq!(unescape(&strip_tags(&html)), format!("{source}\n"));
    assert!(html.contains("<span class=\"t-error\">"), "{html}");
    assert!(
        html.contains("<span class=\"t-warning\">bad line</span>"),
        "{html}"
    );
}

#[test]
fn the_caret_pair_is_marked() {
    let html = to_html("a: [1, 2]", Some(4), &[]);
    assert_eq!(html.matches("t-match").count(), 2, "{html}");
    let html = to_html("a: [1, 2", Some(4), &[]);
    assert_eq!(html.matches("t-nomatch").count(), 1, "{html}");
}

#[test]
fn a_source_over_the_budget_is_drawn_plain() {
    let big = "a: <b>\n".repeat(MAX_BYTES / 7 + 1);
    let html = to_html(&big, Some(3), &[]);
    assert!(!html.contains("<span"));
    assert!(html.starts_with("a: &lt;b&gt;"));
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in html.chars() {
        match c {
            '<' => inside = true,
            '>' if inside => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out
}
