"""Drive the Terraform stack from Python: the test suite, ``make demo`` and the CLI use this.

A :class:`Terraform` is one working copy of a root module: where its configuration is, where Terraform keeps
its working data (``TF_DATA_DIR``) and its state file, and the environment it runs in. Pointing ``data_dir``
and ``state`` into a temporary directory keeps a run out of the source tree, so parallel runs do not
collide::

    tf = Terraform(stack_dir(), data_dir=tmp / "tf", state=tmp / "tfstate", env=emulator.environment())
    tf.init()                      # honours TF_PLUGIN_MIRROR: offline init from a provider mirror
    tf.apply(EMBEDDED_VARIABLES)
    tf.plan(EMBEDDED_VARIABLES)    # False: nothing to change
    tf.outputs()["landing_bucket"]

The environment decides the target, as everywhere in the project: ``AWS_ENDPOINT_URL`` (the embedded
emulator or LocalStack) or real AWS credentials. An empty value in ``env`` removes that variable (e.g.
``AWS_PROFILE``), the same convention as :func:`pipeline_toolkit.emulator.patched_environ`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline_toolkit.project import load_functions, stack_dir

#: Environment variable naming a provider mirror directory, laid out as
#: ``<host>/<namespace>/<type>/<version>/<os_arch>``.
PLUGIN_MIRROR_ENV = "TF_PLUGIN_MIRROR"


#: Root variables for the embedded target (moto's server in a child process). ``managed_sqs_polling`` is
#: the one local-only switch: the SQS event source mappings are created disabled and the local runtime
#: polls the queues. The next two only make the throw-away stack destroyable; bucket names need no
#: account-and-region suffix in an emulator of one's own (``pipeline-dev-landing``).
EMBEDDED_VARIABLES: Mapping[str, Any] = {
    "managed_sqs_polling": False,
    "table_deletion_protection": False,
    "force_destroy": True,
    "bucket_name_suffix": "",
    "user_pool_deletion_protection": False,
    # Small parts, so that files of a few MB already take the parts path (and each part fits the local
    # functions' 5 s timeout at the emulator's write rate).
    "part_bytes": 256 << 10,
    # An API action moto lacks is answered with an error the provider retries, 25 times by default: many
    # silent minutes. A few attempts make such a gap fail within seconds (AWS_MAX_ATTEMPTS is not read).
    "provider_max_retries": 5,
    # No upload page behind CloudFront: moto 5.2.5 lacks CreateResponseHeadersPolicy (404) and reads a
    # distribution back without its origin's OAC id (a second plan is never clean). A local page server
    # serves web/ there instead (terraform/modules/site/README.md).
    "enable_upload_page": False,
}

#: Settings of every function for local runs: short timeouts, so that a failing message is retried (and
#: dead-lettered after max_receive_count) within a minute rather than after AWS-sized visibility timeouts.
LOCAL_SETTINGS: Mapping[str, int] = {"timeout": 5, "max_receive_count": 3}


def local_function_settings(root: Path | None = None) -> dict[str, dict[str, int]]:
    """``function_settings`` for local runs: :data:`LOCAL_SETTINGS` for each function of the list (of the
    checkout at ``root``, default the project's)."""
    # A function whose list entry raises max_receive_count keeps it (the part loader: a checkpointed part may
    # take several attempts, each of which spends a receive).
    return {
        key: {
            **LOCAL_SETTINGS,
            **{name: value for name, value in spec.settings.items() if name == "max_receive_count"},
        }
        for key, spec in load_functions(root).items()
    }


# Exit codes of `terraform plan -detailed-exitcode`.
_PLAN_NO_CHANGES = 0
_PLAN_HAS_CHANGES = 2


class TerraformError(RuntimeError):
    """A terraform command failed. ``output`` holds what it printed (stdout then stderr)."""

    def __init__(self, command: Sequence[str], returncode: int, output: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-40:])
        super().__init__(f"`{' '.join(self.command)}` exited with {returncode}:\n{tail}")


def find_binary(name: str = "terraform") -> str | None:
    """Path of the terraform binary on PATH, or None."""
    return shutil.which(name)


def plugin_mirror(environ: Mapping[str, str] | None = None) -> Path | None:
    """The provider mirror named by ``TF_PLUGIN_MIRROR`` (None when unset or empty).

    Raises ``FileNotFoundError`` when it is set but is not a directory, rather than letting init fall back to
    the registry and fail later with a less clear network error.
    """
    value = (os.environ if environ is None else environ).get(PLUGIN_MIRROR_ENV, "")
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"{PLUGIN_MIRROR_ENV}={value} is not a directory")
    return path


class Terraform:
    """Runs terraform commands for one root module, with its own data directory, state file and environment.

    - ``workdir``: the root module (default: the stack of the project checkout, see :mod:`.project`).
    - ``data_dir``: ``TF_DATA_DIR`` (providers, modules); default ``<workdir>/.terraform``.
    - ``state``: the state file (``-state``, for the default local backend); default
      ``<workdir>/terraform.tfstate``. Terraform >= 1.10 prints that ``-state`` is deprecated in favour of the
      local backend's ``path``; it is kept because declaring a backend would break ``init -backend=false``
      followed by ``plan``, which other tools here rely on.
    - ``env``: variables set (or, with an empty value, removed) on top of this process's environment.
    - ``echo``: stream terraform's output to this process's stdout/stderr instead of capturing it.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        data_dir: Path | None = None,
        state: Path | None = None,
        env: Mapping[str, str] | None = None,
        binary: str | None = None,
        echo: bool = False,
    ) -> None:
        self.workdir = stack_dir() if workdir is None else Path(workdir)
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.state = None if state is None else Path(state)
        self.env: dict[str, str] = dict(env or {})
        self.echo = echo
        found = binary or find_binary()
        if found is None:
            raise FileNotFoundError("terraform is not on PATH; install Terraform >= 1.9")
        self.binary = found
        #: Output of the last command (empty when ``echo`` is on).
        self.last_output = ""

    # --- commands -----------------------------------------------------------------------------------------

    def init(self, mirror: Path | None = None, *, backend: bool = True, upgrade: bool = False) -> None:
        """``terraform init``.

        Providers come from ``mirror``, else from ``TF_PLUGIN_MIRROR`` if set (in ``env`` or this process's
        environment), else from the registry. ``backend=False`` skips backend set-up (enough to validate).
        """
        if mirror is None:
            mirror = plugin_mirror(self.environment())
        args = ["init", "-input=false", "-no-color"]
        if mirror is not None:
            args.append(f"-plugin-dir={mirror}")
        if not backend:
            args.append("-backend=false")

        if upgrade:
            args.append("-upgrade")
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self._run(args)

    def validate(self) -> dict[str, Any]:
        """``terraform validate -json``: the parsed report (``valid``, ``error_count``, ``diagnostics``...).
        Does not raise on an invalid configuration; check ``report["valid"]``."""
        result = self._run(["validate", "-json", "-no-color"], check=False, capture=True)
        report: dict[str, Any] = json.loads(result.stdout)
        return report

    def apply(
        self,
        variables: Mapping[str, Any] | None = None,
        *,
        targets: Sequence[str] = (),
        auto_approve: bool = True,
    ) -> None:
        """``terraform apply`` with these root variables, of ``targets`` alone (``-target``) when given.

        ``auto_approve=False`` leaves the confirmation to Terraform's own prompt: its output then streams to
        this terminal and the answer is read from this process's stdin, whatever ``echo`` says."""
        args = ["apply", "-input=false", "-no-color", *(f"-target={target}" for target in targets)]
        if auto_approve:
            args.insert(1, "-auto-approve")
        self._run_with_variables(args, variables, interactive=not auto_approve)

    def plan(
        self,
        variables: Mapping[str, Any] | None = None,
        *,
        refresh: bool = True,
        out: Path | None = None,
        targets: Sequence[str] = (),
    ) -> bool:
        """``terraform plan -detailed-exitcode``: True when applying would change something. The plan itself
        is in ``last_output``. ``refresh=False`` skips reading the deployed resources (quicker, e.g. to check
        that variables are accepted); ``out`` saves the plan there (read it with :meth:`show_json`);
        ``targets`` plans those addresses alone (``-target``)."""
        args = ["plan", "-detailed-exitcode", "-input=false", "-no-color", *(f"-target={t}" for t in targets)]
        if not refresh:
            args.append("-refresh=false")
        if out is not None:
            args.append(f"-out={out}")
        result = self._run_with_variables(
            args,
            variables,
            ok_codes=(_PLAN_NO_CHANGES, _PLAN_HAS_CHANGES),
        )
        return result.returncode == _PLAN_HAS_CHANGES

    def show_json(self, plan: Path) -> dict[str, Any]:
        """``terraform show -json`` of a saved plan: its ``resource_changes``, ``planned_values``..."""
        result = self._run(["show", "-json", "-no-color", str(plan)], capture=True)
        shown: dict[str, Any] = json.loads(result.stdout)
        return shown

    def outputs(self) -> dict[str, Any]:
        """The root module's outputs, as plain values (``terraform output -json``, unwrapped)."""
        args = ["output", "-json", "-no-color"]
        if self.state is not None:
            args.append(f"-state={self.state}")
        result = self._run(args, capture=True)
        raw: dict[str, dict[str, Any]] = json.loads(result.stdout or "{}")
        return {name: entry["value"] for name, entry in raw.items()}

    def destroy(self, variables: Mapping[str, Any] | None = None, *, targets: Sequence[str] = ()) -> None:
        """``terraform destroy -auto-approve`` with these root variables, of ``targets`` alone when given."""
        args = ["destroy", "-auto-approve", "-input=false", "-no-color", *(f"-target={t}" for t in targets)]
        self._run_with_variables(args, variables)

    # --- plumbing -----------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The environment terraform runs in: this process's, then ``env`` (an empty value removes one)."""
        merged = dict(os.environ)
        for name, value in self.env.items():
            if value == "":
                merged.pop(name, None)
            else:
                merged[name] = value
        merged["TF_IN_AUTOMATION"] = "1"
        merged["TF_INPUT"] = "0"
        if self.data_dir is not None:
            merged["TF_DATA_DIR"] = str(self.data_dir)
        return merged

    def _run_with_variables(
        self,
        args: list[str],
        variables: Mapping[str, Any] | None,
        ok_codes: tuple[int, ...] = (0,),
        *,
        interactive: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        if self.state is not None:
            args = [*args, f"-state={self.state}"]
        if not variables:
            return self._run(args, ok_codes=ok_codes, interactive=interactive)
        # A JSON var file carries maps, lists and booleans exactly, with no shell or HCL quoting.
        var_dir = self.data_dir if self.data_dir is not None else None
        if var_dir is not None:
            var_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="vars-", suffix=".tfvars.json", dir=var_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(variables), handle)
            return self._run([*args, f"-var-file={name}"], ok_codes=ok_codes, interactive=interactive)
        finally:
            Path(name).unlink(missing_ok=True)

    def _run(
        self,
        args: list[str],
        *,
        ok_codes: tuple[int, ...] = (0,),
        check: bool = True,
        capture: bool = False,
        interactive: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *args]
        # A prompt must reach the terminal: an interactive command is never captured.
        captured = not interactive and (capture or not self.echo)
        result = subprocess.run(
            command,
            cwd=self.workdir,
            env=self.environment(),
            capture_output=captured,
            text=True,
            check=False,
        )
        self.last_output = (result.stdout or "") + (result.stderr or "") if captured else ""
        if check and result.returncode not in ok_codes:
            raise TerraformError(command, result.returncode, self.last_output)
        return result
