"""The `mg-serve` command (also `mg serve`): serve a model folder over HTTP with the torch engine or vLLM.

User errors (no such folder, not a model folder, the port taken, a bad flag) end as one line on stderr and
exit code 2; the server's own log goes through uvicorn's logging.
"""

from __future__ import annotations

import socket
import sys

import click

ENGINES = ("torch", "vllm", "auto")


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


@click.command(name="serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="torch",
    show_default=True,
    help="auto: vllm when a CUDA GPU and mg-env's vllm env are present, else torch.",
)
@click.option(
    "--api-key",
    envvar="MG_SERVE_API_KEY",
    help="Required as `Authorization: Bearer KEY` (env MG_SERVE_API_KEY).",
)
@click.option("--served-model-name", help="The model name clients send (default: MODEL_DIR as given).")
@click.option(
    "--max-batch-tokens",
    default=8192,
    show_default=True,
    type=click.IntRange(min=1),
    help="Padded tokens per batched forward (torch engine).",
)
@click.option(
    "--max-wait-ms",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="How long a forward waits for more requests to batch (torch engine).",
)
@click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ... (torch engine)"
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="auto: the weights' own dtype.",
)
@click.option("--trust-remote-code", is_flag=True, help="Run code shipped with the model folder.")
@click.option("--log-level", default="info", show_default=True)
def cli(
    model_dir,
    host,
    port,
    engine,
    api_key,
    served_model_name,
    max_batch_tokens,
    max_wait_ms,
    device,
    dtype,
    trust_remote_code,
    log_level,
) -> None:
    """Serve MODEL_DIR (an mg-train export or a transformers / sentence-transformers folder) with vLLM's
    HTTP API: /v1/embeddings, /classify, /score, /rerank, /pooling, /v1/chat/completions, ..."""
    from mg_serve.folders import FolderError, inspect_folder

    try:
        info = inspect_folder(model_dir)
    except FolderError as e:
        raise UserError(str(e)) from None
    name = served_model_name or model_dir
    if engine == "auto":
        engine = "vllm" if vllm_available() else "torch"
    sock = bind(host, port)
    if engine == "vllm":
        from mg_serve.vllm_engine import VLLMError, serve_with_vllm

        try:
            # The socket: the API-key proxy listens on it; without a key it is closed for vLLM to bind.
            serve_with_vllm(
                model_dir, host, port, api_key, name, dtype=None if dtype == "auto" else dtype, sock=sock
            )
        except VLLMError as e:
            click.echo(f"error: {str(e).splitlines()[0]}", err=True)
            sys.exit(1)
        return
    try:
        serve_torch(
            sock,
            model_dir,
            task=info.task,
            name=name,
            api_key=api_key,
            max_batch_tokens=max_batch_tokens,
            max_wait_ms=max_wait_ms,
            device=device,
            dtype=None if dtype == "auto" else dtype,
            trust_remote_code=trust_remote_code,
            log_level=log_level,
        )
    except NotImplementedError as e:  # a folder this engine cannot serve yet: a user-facing limit
        raise UserError(str(e)) from None


def serve_torch(
    sock: socket.socket, model_dir: str, *, task: str, name: str, log_level: str, **options
) -> None:
    import uvicorn

    from mg_serve.app import create_app

    app = create_app(model_dir, served_model_name=name, **options)
    host, port = sock.getsockname()[:2]
    engine = app.state.engine
    click.echo(
        f"mg-serve: {task} model {model_dir} as {name!r} on http://{host}:{port} "
        f"(torch engine, {getattr(engine, 'device', 'cpu')})",
        err=True,
    )
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads, so a taken port fails at once, in one line."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as e:
        raise UserError(f"--host {host}: cannot resolve it ({e.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror})") from None
    return sock


def vllm_available() -> bool:
    """A CUDA GPU and a built `vllm` env from mg-env."""
    from mg_env import envs, gpu
    from mg_env.errors import EnvError

    if not gpu.cuda_gpus():
        return False
    try:
        envs.get("vllm")
    except EnvError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
