//! Scenario 7: `virt-hook run` as a whole process against `/bin/sh -c` running the
//! same script.

use std::{
    ffi::{OsStr, OsString},
    fs,
    path::Path,
};

use crate::{
    fail::{Context, Result, fail},
    fixtures::{SMALL_XML, write_script},
    report::{Goal, Report, Unit},
    scenarios::{Ctx, Pair, raw_ok},
};
use virt_hooks_exec::baseline::{Prepared, Spawner};

pub(crate) fn run(c: &Ctx, r: &mut Report) -> Result<()> {
    println!("\n[7] `virt-hook run` as a process vs /bin/sh -c '<script> ...'");
    let hooks = c.hooks_dir("s7-hooks")?;
    let main = hooks.join("qemu");
    write_script(&main, "#!/bin/sh\nexit 0\n")?;
    let input = c.work.join("s7-domain.xml");
    fs::write(&input, SMALL_XML).with_context(|| format!("write {}", input.display()))?;
    let bin = &c.installed.virt_hook;
    let word = OsStr::new;
    let argv = [
        bin.as_os_str(),
        word("--plugin-dir"),
        c.installed.dir.as_os_str(),
        word("--hooks-dir"),
        hooks.as_os_str(),
        word("run"),
        word("qemu"),
        word("vm1"),
        word("start"),
        word("begin"),
        word("-"),
        word("--input"),
        input.as_os_str(),
    ];
    let ours = Prepared::new(bin, &argv, &c.env).context("cannot prepare virt-hook run")?;
    let mut cmd = OsString::from(main.as_os_str());
    cmd.push(" vm1 start begin -");
    let sh = Path::new("/bin/sh");
    let base = Prepared::new(sh, &[sh.as_os_str(), word("-c"), &cmd], &c.env)
        .context("cannot prepare /bin/sh -c")?;
    let mut err = Vec::new();
    let code = ours.run_capture(Spawner::PosixSpawn, None, None, Some(&mut err))?;
    if code != 0 {
        return Err(fail(format!(
            "virt-hook run exited {code}: {}",
            String::from_utf8_lossy(&err).trim()
        )));
    }
    let xml = Some(SMALL_XML.as_bytes());
    let m = Pair {
        ours: "virt-hook run (process)",
        base: "/bin/sh -c script",
        warm: 5,
        n: c.n(150, 25),
        unit: Unit::Millis,
    }
    .time(
        || raw_ok(&ours, Spawner::PosixSpawn, None, None),
        || raw_ok(&base, Spawner::PosixSpawn, xml, None),
    )?;
    r.record(
        "7 virt-hook run, whole process",
        m,
        Goal::RatioLe(1.3),
        "ours: virt-hook --plugin-dir (3 release plugins) --hooks-dir H run qemu vm1 start begin - --input FILE; baseline: /bin/sh -c 'H/qemu vm1 start begin -' with the XML on stdin",
    );
    Ok(())
}
