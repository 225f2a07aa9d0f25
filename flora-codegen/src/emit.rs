//! IR → tokens. Per technique: two structs (with the three derives users see), one
//! `impl Technique` and two one-line inherent methods returning named futures. All
//! behaviour lives in `flora_api`. Every item here costs compile time in every build of
//! every crate that depends on the generated code (BENCHMARKS.md §2): add one only when a
//! user needs it.
//!
//! Every path is absolute (the runtime path, `::flora_api` by default, `::core::…`,
//! `::std::…`) so a technique named `Result` or `Client` cannot shadow anything.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

use crate::Config;
use crate::docs;
use crate::ir::{Kind, SlotSpec, TechniqueSpec};
use crate::naming;

pub(crate) fn ident(rust: &str) -> Ident {
    match rust.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(rust, Span::call_site()),
    }
}

pub(crate) fn doc_attrs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().map(|l| docs::line(l));
    quote! { #( #[doc = #lines] )* }
}

/// The runtime path as tokens (`::flora_api`). `Config::validate` has checked it is a path.
pub(crate) fn runtime(config: &Config) -> TokenStream {
    config
        .runtime()
        .parse()
        .unwrap_or_else(|_| quote!(::flora_api))
}

/// The runtime path as a doctest names it: a doctest is another crate, so a `crate::` path is
/// spelled through the crate the module path starts with.
fn doc_runtime(config: &Config) -> String {
    let rt = config.runtime();
    match (rt.strip_prefix("crate"), config.module()) {
        (Some(rest), Some(module)) => {
            let krate = module.split("::").next().unwrap_or(module);
            format!("{krate}{rest}")
        }
        _ => rt.trim_start_matches("::").to_owned(),
    }
}

fn ty(kind: Kind, rt: &TokenStream) -> TokenStream {
    let name = format_ident!("{}", kind.type_name());
    match kind {
        Kind::Text | Kind::Unknown => quote!(::std::string::String),
        Kind::Media(_) | Kind::Raw => quote!(#rt::#name),
    }
}

fn fmt_cost(cost: f64) -> String {
    let s = format!("{cost}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn slot_doc(slot: &SlotSpec, is_input: bool) -> Vec<String> {
    let d = &slot.docs;
    let mut lines = Vec::new();
    match &d.name {
        Some(n) if !n.trim().is_empty() => lines.extend(docs::text_lines(n)),
        _ => lines.push(format!("`{}`", docs::code(&slot.name.wire))),
    }
    if let Some(desc) = &d.description {
        let text = docs::text_lines(desc);
        if !text.is_empty() {
            lines.push(String::new());
            lines.extend(text);
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "- Wire id: `{}`, type: `{}`",
        docs::code(&slot.name.wire),
        docs::code(&slot.wire_type)
    ));
    match slot.kind {
        Kind::Unknown => lines.push(format!(
            "- Type `{}` is unknown to the flora-codegen that generated this: the string is \
             sent verbatim",
            docs::code(&slot.wire_type)
        )),
        Kind::Raw => lines.push(format!(
            "- Type `{}` is unknown to the flora-codegen that generated this: the output is \
             kept as sent",
            docs::code(&slot.wire_type)
        )),
        _ => {}
    }
    if is_input && slot.optional {
        lines.push("- Optional: `None` leaves it out of the request".to_owned());
    }
    if let Some(ar) = &d.aspect_ratio {
        lines.push(format!("- Aspect ratio: `{}`", docs::code(ar)));
    }
    if let Some(dur) = d.duration {
        lines.push(format!("- Duration: {dur} s"));
    }
    if d.accepts_element {
        lines.push("- Also accepts an element id (use the dynamic API to pass one)".to_owned());
    }
    if d.allow_multiple {
        lines.push(
            "- The API allows several values (one run each); this field takes one".to_owned(),
        );
    }
    lines
}

fn example_value(slot: &SlotSpec, rt: &str) -> String {
    let file = match slot.kind {
        Kind::Media(m) => m.example_file,
        Kind::Text | Kind::Raw | Kind::Unknown => return text_example(slot),
    };
    if slot.optional {
        return "None".to_owned();
    }
    format!(
        "::{rt}::{}::parse(\"https://example.com/{file}\")?",
        slot.kind.type_name()
    )
}

fn text_example(slot: &SlotSpec) -> String {
    if slot.optional {
        "None"
    } else {
        "\"...\".to_owned()"
    }
    .to_owned()
}

fn struct_doc(t: &TechniqueSpec, config: &Config) -> Vec<String> {
    let module_path = config.module();
    let rt = doc_runtime(config);
    let mut lines = docs::text_lines(&t.display_name);
    if let Some(desc) = &t.description {
        let text = docs::text_lines(desc);
        if !text.is_empty() {
            lines.push(String::new());
            lines.extend(text);
        }
    }
    lines.push(String::new());
    lines.push(format!("- Slug: `{}`", docs::code(&t.module.wire)));
    lines.push(format!("- Technique id: `{}`", docs::code(&t.technique_id)));
    lines.push(format!("- Cost per run: {} USD", fmt_cost(t.run_cost)));
    lines.push(String::new());
    lines.push("# Example".to_owned());
    lines.push(String::new());
    // A compiled doctest where the module's path is known; shown only elsewhere.
    lines.push(
        if module_path.is_some() {
            "```no_run"
        } else {
            "```ignore"
        }
        .to_owned(),
    );
    lines.push(format!(
        "# async fn example() -> Result<(), {rt}::Error> {{"
    ));
    lines.push(format!("let client = {rt}::Client::from_env()?;"));
    let path = format!(
        "{}::{}",
        module_path.unwrap_or("techniques"),
        naming::unraw(&t.struct_name.rust)
    );
    if t.inputs.is_empty() {
        lines.push(format!("let done = {path} {{}}.run(&client).await?;"));
    } else {
        lines.push(format!("let done = {path} {{"));
        for i in &t.inputs {
            lines.push(format!("    {}: {},", i.name.rust, example_value(i, &rt)));
        }
        lines.push("}".to_owned());
        lines.push(".run(&client)".to_owned());
        lines.push(".await?;".to_owned());
    }
    lines.push("println!(\"{:?}\", done.outputs);".to_owned());
    lines.push("# Ok(()) }".to_owned());
    lines.push("```".to_owned());
    lines
}

/// The tokens of one technique's file.
pub fn technique(t: &TechniqueSpec, config: &Config) -> TokenStream {
    let rt = runtime(config);
    let name = ident(&t.struct_name.rust);
    let outputs = format_ident!("{}", t.outputs_name);
    let doc = doc_attrs(&struct_doc(t, config));
    // `struct@`: a technique named `Debug` or `Clone` would otherwise make the link
    // ambiguous with the derive macro of that name.
    let out_doc = doc_attrs(&[format!(
        "Outputs of [`{0}`](struct@{0}), one field per output id.",
        naming::unraw(&t.struct_name.rust)
    )]);

    let all_optional = t.inputs.iter().all(|i| i.optional);
    let derive = if all_optional {
        quote!(#[derive(Debug, Clone, PartialEq, Default)])
    } else {
        quote!(#[derive(Debug, Clone, PartialEq)])
    };

    let in_fields = t.inputs.iter().map(|i| {
        let f = ident(&i.name.rust);
        let d = doc_attrs(&slot_doc(i, true));
        let ty = ty(i.kind, &rt);
        let ty = if i.optional {
            quote!(::core::option::Option<#ty>)
        } else {
            ty
        };
        quote! { #d pub #f: #ty, }
    });
    let pushes = t.inputs.iter().map(|i| {
        let f = ident(&i.name.rust);
        let id = &i.name.wire;
        let wt = &i.wire_type;
        quote! { #rt::RunInput::push(&mut inputs, #id, #wt, &self.#f); }
    });
    let n_inputs = Literal::usize_unsuffixed(t.inputs.len());
    let inputs_body = if t.inputs.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        quote! {
            let mut inputs = ::std::vec::Vec::with_capacity(#n_inputs);
            #(#pushes)*
            inputs
        }
    };

    let out_fields = t.outputs.iter().map(|o| {
        let f = ident(&o.name.rust);
        let d = doc_attrs(&slot_doc(o, false));
        let ty = ty(o.kind, &rt);
        quote! { #d pub #f: #ty, }
    });
    let takes = t.outputs.iter().map(|o| {
        let f = ident(&o.name.rust);
        let id = &o.name.wire;
        quote! { #f: outputs.take(#id)?, }
    });
    let outputs_arg = if t.outputs.is_empty() {
        quote!(_outputs)
    } else {
        quote!(outputs)
    };

    let slug = &t.module.wire;
    let tid = &t.technique_id;
    let cost = Literal::f64_unsuffixed(t.run_cost);
    let slot_infos = |slots: &[SlotSpec]| {
        let items = slots.iter().map(|s| {
            let (id, wt, opt) = (&s.name.wire, &s.wire_type, s.optional);
            quote!(#rt::SlotInfo::new(#id, #wt, #opt))
        });
        quote!(&[#(#items),*])
    };
    let input_infos = slot_infos(&t.inputs);
    let output_infos = slot_infos(&t.outputs);
    let fake_impls = match config.test_util() {
        Some(feature) => fake_impls(t, feature, &rt),
        None => TokenStream::new(),
    };

    quote! {
        #doc
        #derive
        pub struct #name {
            #(#in_fields)*
        }

        #out_doc
        #[derive(Debug, Clone, PartialEq)]
        pub struct #outputs {
            #(#out_fields)*
        }

        impl #rt::Technique for #name {
            const INFO: #rt::TechniqueInfo = #rt::TechniqueInfo::new(
                #slug,
                #tid,
                #cost,
                #input_infos,
                #output_infos,
            );
            type Outputs = #outputs;
            #[inline]
            fn inputs(&self) -> ::std::vec::Vec<#rt::RunInput> {
                #inputs_body
            }
            #[inline]
            fn parse_outputs(
                #outputs_arg: &mut #rt::OutputSet,
            ) -> ::core::result::Result<#outputs, #rt::Error> {
                ::core::result::Result::Ok(#outputs { #(#takes)* })
            }
        }

        #fake_impls

        impl #name {
            /// Starts a run and waits for its typed outputs.
            #[inline]
            pub fn run<'a>(
                &self,
                client: &'a #rt::Client,
            ) -> #rt::RunFuture<'a, Self> {
                client.run(self)
            }

            /// Starts a run and returns its handle without waiting.
            #[inline]
            pub fn start<'a>(
                &self,
                client: &'a #rt::Client,
            ) -> #rt::StartFuture<'a, Self> {
                client.start(self)
            }
        }
    }
}

/// `flora_api::testing` support (wire inputs back to the struct, outputs to the wire), only
/// under the test-util feature, so other builds do not compile it. The contract is named at
/// the runtime's root, never through `testing`: the fake sits on top and nothing imports it.
fn fake_impls(t: &TechniqueSpec, feature: &str, rt: &TokenStream) -> TokenStream {
    let name = ident(&t.struct_name.rust);
    let outputs = format_ident!("{}", t.outputs_name);
    let gets = t.inputs.iter().map(|i| {
        let f = ident(&i.name.rust);
        let id = &i.name.wire;
        quote! { #f: inputs.get(#id)?, }
    });
    let puts = t.outputs.iter().map(|o| {
        let f = ident(&o.name.rust);
        let id = &o.name.wire;
        let wt = &o.wire_type;
        quote! { outputs.put(#id, #wt, &value.#f); }
    });
    let inputs_arg = if t.inputs.is_empty() {
        quote!(_inputs)
    } else {
        quote!(inputs)
    };
    let (value_arg, outputs_arg) = if t.outputs.is_empty() {
        (quote!(_value), quote!(_outputs))
    } else {
        (quote!(value), quote!(outputs))
    };
    quote! {
        #[cfg(feature = #feature)]
        impl #rt::FakeTechnique for #name {
            fn from_wire(
                #inputs_arg: &#rt::WireInputs<'_>,
            ) -> ::core::result::Result<Self, ::std::string::String> {
                ::core::result::Result::Ok(Self { #(#gets)* })
            }
            fn outputs_to_wire(
                #value_arg: &#outputs,
                #outputs_arg: &mut #rt::WireOutputs,
            ) {
                #(#puts)*
            }
        }
    }
}

/// The tokens of `mod.rs`: one module per technique, re-exported.
pub fn module_index(specs: &[TechniqueSpec], config: &Config) -> TokenStream {
    let rt = runtime(config);
    let contract = Literal::u32_unsuffixed(crate::CONTRACT);
    let items = specs.iter().map(|t| {
        let m = ident(&t.module.rust);
        let s = ident(&t.struct_name.rust);
        let o = format_ident!("{}", t.outputs_name);
        let mut lines = docs::text_lines(&t.display_name);
        lines.push(String::new());
        lines.push(format!("Slug `{}`.", docs::code(&t.module.wire)));
        let d = doc_attrs(&lines);
        quote! {
            #d
            // In a binary crate, techniques it does not call are dead code; that is fine.
            #[allow(dead_code)]
            pub mod #m;
            #[allow(unused_imports)]
            pub use #m::{#s, #o};
        }
    });
    let infos = specs.iter().map(|t| {
        let m = ident(&t.module.rust);
        let s = ident(&t.struct_name.rust);
        quote!(<#m::#s as #rt::Technique>::INFO)
    });
    // The runtime checks, at compile time, that it speaks the contract this code was
    // generated for; a mismatch fails with a message that says to regenerate.
    quote! {
        const _: () = #rt::__codegen::expect_contract(#contract);
        #(#items)*
        /// Every technique generated here, as the generated code knows it: for tools that
        /// list them, or a fake that serves them all.
        #[allow(dead_code)]
        pub const TECHNIQUES: &[#rt::TechniqueInfo] = &[#(#infos),*];
    }
}
