#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mnode_tests::fuzz::dag_pb(data));
