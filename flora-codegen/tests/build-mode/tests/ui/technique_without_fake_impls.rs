// A technique generated without `test_util_feature` (or with the user's feature off) used
// with `FakeFlora`: the error says which feature to enable and how (issue 21).
use flora_api::{Error, OutputSet, RunInput, Technique, TechniqueInfo};

struct VideoDub;

impl Technique for VideoDub {
    const INFO: TechniqueInfo = TechniqueInfo::new("video-dub", "tech_video-dub", 0.1, &[], &[]);
    type Outputs = ();
    fn inputs(&self) -> Vec<RunInput> {
        Vec::new()
    }
    fn parse_outputs(_: &mut OutputSet) -> Result<(), Error> {
        Ok(())
    }
}

fn main() {
    let fake = flora_api::testing::FakeFlora::new();
    fake.technique::<VideoDub>().completes();
}
