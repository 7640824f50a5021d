//! Differential test of the target parser against graphite-web 1.1.8's own grammar.
//!
//! Each target is parsed by `render::parse::parse` and by graphite-web's pyparsing grammar
//! (run through `/usr/bin/python3`, which can import `graphite`), and both trees are dumped in
//! one canonical text form and compared. The Python side reads the parse results the way
//! graphite-web's evaluator does (`evaluateTokens`: pipes become first arguments, the value of
//! each literal). Where graphite-web would ignore unparsed trailing input we report an error
//! (the documented difference), so the Python side parses with `parseAll=True` there.
//!
//! Without graphite-web the test prints why and passes, unless `GRAPHITE_REQUIRE_REFERENCE=1`.

mod common;

use std::fmt::Write as _;

use render::parse::parse;
use render::{Arg, Expr, Literal};

/// Reads hex-encoded targets from stdin, prints one canonical dump per line (`E` for a parse
/// error, `R` when Python's recursion limit was hit).
const REFERENCE: &str = r#"
import os, sys, struct, warnings
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'graphite.settings')
warnings.simplefilter('ignore')
try:
    import django
    django.setup()
    from graphite.render.grammar_unsafe import grammar
except Exception as e:
    print('cannot import graphite: %r' % (e,), file=sys.stderr)
    sys.exit(3)

def h(s): return s.encode('utf-8').hex()
def fl(x): return 'F' + struct.pack('>d', x).hex()

def lit(t):
    if t.number:
        n = t.number
        if n.integer:
            v = int(n.integer)
            if -2**63 <= v < 2**63: return 'I' + str(v)
            try: return fl(float(v))
            except OverflowError: return fl(float('inf') if v > 0 else float('-inf'))
        if n.float: return fl(float(n.float))
        if n.scientific: return fl(float(n.scientific[0]))
        raise ValueError('number')
    if t.string: return 'S' + h(t.string[1:-1])
    if t.boolean: return 'B' + str(t.boolean[0] == 'true')
    if t.none: return 'N'
    if t.infinity: return fl(float('inf'))
    raise ValueError('token')

def expr(t):
    if t.template:
        tp = t.template
        a = [lit(x) for x in (tp.args or [])]
        k = [kw.argname + '=' + lit(kw.args[0]) for kw in (tp.kwargs or [])]
        return 'T(' + inner(tp) + ';' + ','.join(a) + ';' + ','.join(k) + ')'
    if t.expression:
        e = t.expression
        head = inner(e)
        for pc in e.pipedCalls:
            head = call(pc.call, head)
        return head
    return inner(t)

def inner(t):
    if t.template: return expr(t)
    if t.pathExpression: return 'P' + h(t.pathExpression)
    if t.call: return call(t.call, None)
    raise ValueError('inner')

def arg(a):
    if a.template or a.expression or a.pathExpression or a.call:
        return expr(a)
    return lit(a)

def call(c, piped):
    args = [arg(x) for x in (c.args or [])]
    if piped is not None: args.insert(0, piped)
    kw = [k.argname + '=' + arg(k.args[0]) for k in (c.kwargs or [])]
    return 'C(' + c.funcname + ';' + h(c.raw) + ';' + ','.join(args) + ';' + ','.join(kw) + ')'

for line in sys.stdin:
    s = bytes.fromhex(line.strip()).decode('utf-8')
    try:
        print(expr(grammar.parseString(s, parseAll=True)))
    except RecursionError:
        print('R')
    except Exception as e:
        print('E')
    sys.stdout.flush()
"#;

fn hex(s: &str) -> String {
    s.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn dump_literal(lit: &Literal) -> String {
    match lit {
        Literal::Int(i) => format!("I{i}"),
        Literal::Float(x) => format!("F{:016x}", x.to_bits()),
        Literal::Str(s) => format!("S{}", hex(s)),
        Literal::Bool(b) => format!("B{}", if *b { "True" } else { "False" }),
        Literal::None => "N".into(),
    }
}

fn dump_arg(arg: &Arg) -> String {
    match arg {
        Arg::Literal(lit) => dump_literal(lit),
        Arg::Expr(e) => dump(e),
    }
}

/// The same canonical form as the Python script's.
fn dump(expr: &Expr) -> String {
    match expr {
        Expr::Path(p) => format!("P{}", hex(p)),
        Expr::Call(c) => {
            let args: Vec<String> = c.args.iter().map(dump_arg).collect();
            let kwargs: Vec<String> =
                c.kwargs.iter().map(|(k, a)| format!("{k}={}", dump_arg(a))).collect();
            format!("C({};{};{};{})", c.name, hex(&c.raw), args.join(","), kwargs.join(","))
        }
        Expr::Template { inner, args, kwargs } => {
            let args: Vec<String> = args.iter().map(dump_literal).collect();
            let kwargs: Vec<String> =
                kwargs.iter().map(|(k, l)| format!("{k}={}", dump_literal(l))).collect();
            format!("T({};{};{})", dump(inner), args.join(","), kwargs.join(","))
        }
    }
}

/// Runs graphite-web's grammar on `targets`; `None` (after printing why) when it is not
/// available and not required.
fn reference(targets: &[String]) -> Option<Vec<String>> {
    let input: String = targets.iter().map(|t| format!("{}\n", hex(t))).collect();
    let out = common::run_reference("comparison", REFERENCE, input)?;
    let lines: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(lines.len(), targets.len(), "one answer per target");
    Some(lines)
}

fn compare(targets: &[String]) {
    let Some(expected) = reference(targets) else { return };
    let mut failures = Vec::new();
    let mut deep = 0;
    for (target, want) in targets.iter().zip(&expected) {
        if want == "R" {
            deep += 1;
            continue;
        }
        let got = match parse(target) {
            Ok(e) => dump(&e),
            Err(_) => "E".into(),
        };
        if &got != want {
            failures.push(format!("{target:?}\n  graphite: {want}\n  ours:     {got}"));
        }
    }
    let errors = expected.iter().filter(|w| *w == "E").count();
    eprintln!(
        "{} targets: {} parse, {errors} are errors, {deep} skipped (too deep for Python)",
        targets.len(),
        targets.len() - errors - deep
    );
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        targets.len(),
        failures.join("\n")
    );
}

/// Targets covering every rule of the grammar and its quirks.
const TARGETS: &[&str] = &[
    // Paths, globs, escapes.
    "a",
    "a.b.c",
    "servers.*.cpu.user",
    "servers.web0[1-3].cpu.{user,system}",
    "a.{b,c}.d{e,f}g",
    "a.b?c*",
    "a-b_c:d;e=f~g!h@i#j$k%l^m&n*o?p[q]r<s>t/u+v`w",
    "a.b;tag=value;other=x",
    r"a.b\(c\).d",
    r"a\,b\.c\{d\}e",
    r#"a\'b\"c\\d\|e\=f"#,
    r"a\b",
    "  a.b  ",
    "\ta.b\n",
    "a.b c",
    "a..b",
    ".a",
    "a.",
    "a.{b,}",
    "a.{}",
    "a.{b,c",
    "a.{b.c}",
    "a.b{c}d.{e}",
    "123",
    "1.5",
    "true",
    "none",
    "inf",
    "-1d",
    "a|b",
    "",
    "   ",
    "é.b",
    "a.é",
    // Calls.
    "sumSeries(a.b)",
    "sumSeries(a.b, c.d)",
    "sumSeries( a.b ,c.d )",
    "sumSeries (a.b)",
    "sumSeries\n(\na.b\n)",
    "f()",
    "f( )",
    "f(,)",
    "f(a,)",
    "f(a b)",
    "_f9(a)",
    "9f(a)",
    "f.g(a)",
    "scale(a.b, 2)",
    "scale(a.b,.5)",
    "scale(a.b, 0.5)",
    "scale(a.b, 5.)",
    "scale(a.b, -0.5)",
    "scale(a.b, -0)",
    "scale(a.b, 1e3)",
    "scale(a.b, 1E3)",
    "scale(a.b, 1.5e-3)",
    "scale(a.b, 1e+3)",
    "scale(a.b, 2e)",
    "scale(a.b, 1e5.3)",
    "scale(a.b, 99999999999999999999)",
    "scale(a.b, -9223372036854775808)",
    "scale(a.b, 9223372036854775807)",
    "scale(a.b, 1e400)",
    "scale(a.b, 1 )",
    "scale(a.b, 1\n)",
    "scale(a.b, 1 \nx)",
    "scale(a.b, 1abc)",
    "scale(a.b, 1.x)",
    "scale(a.b, ١٢)",
    "scale(a.b, ١.٥)",
    "scale(a.b, 1.٥e٣)",
    "f(x, inf)",
    "f(x, INF)",
    "f(x, Inf.b)",
    "f(x, -inf)",
    "f(x, infinity)",
    "f(x, ınf)",
    "f(x, ıNF)",
    "f(x, nan)",
    "f(x, true, false, True, FALSE, tRuE)",
    "f(x, trueish)",
    "f(x, true_)",
    "f(x, true$)",
    "f(x, true-x)",
    "f(x, true.x)",
    "f(x, none, None, NONE)",
    "f(x, nonesuch)",
    "f(x, 'str')",
    "f(x, \"str\")",
    "f(x, 'it\\'s')",
    "f(x, \"say \\\"hi\\\"\")",
    "f(x, 'a''b')",
    "f(x, \"a\"\"b\")",
    "f(x, 'a\"b')",
    "f(x, '\\x41\\x4g')",
    "f(x, '\\x')",
    "f(x, '\\\\')",
    "f(x, 'unterminated)",
    "f(x, 'line\nbreak')",
    "f(x, 'slash\\\nnewline')",
    "f(x, 'é ü 中')",
    "f(x, '')",
    "f(x, \"\")",
    "f(x, '','')",
    "f(x, 'a' 'b')",
    "f(x, 'a'b)",
    "f(x,'a',\"b\",1,2.5,true,none,inf,c.d)",
    // Keyword arguments.
    "f(a.b, k=1)",
    "f(a.b, k = 'v', other=c.d)",
    "f(a.b, k=1, 2)",
    "f(k=1)",
    "f(k=1, a.b)",
    "f(a=b)",
    "f(a.b=c)",
    "f(x, a.b=c)",
    "f(x, 1=2)",
    "f(x, k=)",
    "f(x, k==1)",
    "f(x, k=g(y, j=2))",
    "f(x, k=a|g(1))",
    // Nesting and raw text.
    "sumSeries(scale(a.b, 2), offset( c.d ,-1))",
    "seriesByTag('name=a.b', 'dc=~us.*')",
    "aliasByTags(seriesByTag( 'name=x' ), 'dc')",
    "f(g(h(i(j(k(a))))))",
    "f(g(a), h(b), i(c, 1))",
    "f(a,g(b,h(c,'x')),2)",
    // Pipes.
    "a.b|f()",
    "a.b|f(1)|g(2, k=3)",
    "a.b | f(1)",
    "a.b\n|\tf(1)",
    "a.b|",
    "a.b||f()",
    "a.b|f(k=1)",
    "a.b|c.d",
    "sumSeries(a.*,b.*)|aliasByNode(0)",
    "f(a.b|g(), c.d)",
    "f(a|g()|h(1), k=b|i())",
    "a.b|seriesByTag('x=y')",
    // Templates.
    "template(a.$1.b)",
    "template(a.$1.b, 'x')",
    "template(a.$1.$2, 'x', 2)",
    "template(a.$host, host='web01')",
    "template(a.$host, host='web01', n=2.5)",
    "template(sumSeries(a.$1), 'x')",
    "template (a.$1 , 'x' )",
    "template(a.$1, c.d)",
    "template(a.$1, 'x', k=1)",
    "template(a.$1, k=1, 'x')",
    "template(a.$1, true)",
    "template(a.$1, inf)",
    "template(a.b|f(), 'x')",
    "template(template(a.b), 'x')",
    "template(a.$1, 'x')|f(1)",
    "f(template(a.$1, 'x'))",
    "templatefoo(a)",
    "template",
    "template.a.b",
    "Template(a.$1, 'x')",
];

#[test]
fn matches_graphite_web_on_known_targets() {
    let targets: Vec<String> = TARGETS.iter().map(|t| (*t).to_string()).collect();
    compare(&targets);
}

/// A small xorshift generator, so the random targets are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn matches_graphite_web_on_random_token_soup() {
    // Tokens of the grammar, glued at random: most results are invalid, many are valid in
    // unusual ways, and both sides must agree on every one.
    let tokens = [
        "a",
        "b.c",
        "*",
        "{x,y}",
        "{",
        "}",
        ",",
        ".",
        "(",
        ")",
        "f(",
        "g(",
        "template(",
        "|",
        " ",
        "'s'",
        "\"d\"",
        "'",
        "\"",
        "\\",
        "\\(",
        "=",
        "k=",
        "1",
        "-2",
        "1.5",
        "1e3",
        "e",
        "inf",
        "true",
        "none",
        "$1",
        "\n",
        ";t=v",
        "seriesByTag(",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let targets: Vec<String> = (0..3000)
        .map(|_| {
            let n = 1 + rng.next() % 14;
            (0..n).map(|_| rng.pick(&tokens)).collect()
        })
        .collect();
    compare(&targets);
}

#[test]
fn matches_graphite_web_on_random_well_formed_calls() {
    // Mostly valid targets: nested calls with every kind of argument.
    fn random_call(rng: &mut Rng, depth: u32) -> String {
        let args = [
            "a.b",
            "x.*.{u,v}",
            "1",
            "-2.5",
            "3e2",
            "'s'",
            "\"q\"",
            "true",
            "None",
            "inf",
            "k.l;t=v",
        ];
        if depth == 0 || rng.next().is_multiple_of(3) {
            return rng.pick(&args).to_string();
        }
        let name = rng.pick(&["f", "sumSeries", "template", "seriesByTag", "g_1"]);
        let n = rng.next() % 4;
        let mut parts: Vec<String> = (0..n).map(|_| random_call(rng, depth - 1)).collect();
        if n > 0 && rng.next().is_multiple_of(3) {
            parts.push(format!("{}={}", rng.pick(&["k", "by", "n"]), random_call(rng, depth - 1)));
        }
        let sep = rng.pick(&[",", ", ", " , "]);
        let call = format!("{name}({})", parts.join(sep));
        if rng.next().is_multiple_of(4) {
            format!("{}|{call}", random_call(rng, depth - 1))
        } else {
            call
        }
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let targets: Vec<String> = (0..1500).map(|_| random_call(&mut rng, 4)).collect();
    compare(&targets);
}
