"""KerasTuner's distributed mode (see `tuning.search`): the flags set KerasTuner's
environment variables, and the chief's oracle server waits for its workers."""

from __future__ import annotations

import os
import time

from keras_cases import UserError


def configure_distributed(args) -> str | None:
    """Set KerasTuner's environment variables from the flags; returns "chief", "worker" or None."""
    env = os.environ
    if args.distributed is None:
        if "KERASTUNER_ORACLE_IP" not in env:
            return None
        if "KERASTUNER_ORACLE_PORT" not in env or "KERASTUNER_TUNER_ID" not in env:
            raise UserError(
                "KERASTUNER_ORACLE_IP is set: set KERASTUNER_ORACLE_PORT and "
                "KERASTUNER_TUNER_ID too (an id containing 'chief' for the chief)"
            )
        role = "chief" if "chief" in env["KERASTUNER_TUNER_ID"] else "worker"
        return _worker_timeout(role, args)
    address = args.oracle or (
        f"{env['KERASTUNER_ORACLE_IP']}:{env['KERASTUNER_ORACLE_PORT']}"
        if "KERASTUNER_ORACLE_IP" in env and "KERASTUNER_ORACLE_PORT" in env
        else None
    )
    if not address or ":" not in address:
        raise UserError("--distributed needs --oracle HOST:PORT (the chief's address)")
    host, port = address.rsplit(":", 1)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"--oracle {address}: the port must be a number from 1 to 65535")
    tuner_id = "chief" if args.distributed == "chief" else (args.tuner_id or f"worker-{os.getpid()}")
    if args.distributed == "worker" and "chief" in tuner_id:
        raise UserError(f"--tuner-id {tuner_id!r}: a worker's id must not contain 'chief'")
    env.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=port, KERASTUNER_TUNER_ID=tuner_id)
    return _worker_timeout(args.distributed, args)


def _worker_timeout(role, args):
    if role == "worker":  # KerasTuner's client waits up to an hour for every answer
        from keras_tuner.src.distribute import oracle_client

        oracle_client.TIMEOUT = args.oracle_timeout
    return role


def serve_oracle(oracle, workers: int = 1, poll: float = 0.2):
    """The chief's gRPC server: KerasTuner's `oracle_chief.start_server`, except that it
    hands out no trial until `workers` workers have asked (so that a slow starter cannot
    arrive after the search is over and wait for a chief that is gone), checks every `poll`
    seconds (not 20) whether the workers are done, and stops cleanly."""
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer, exit_chief
    from keras_tuner.src.engine.trial import Trial

    create, waiting = oracle.create_trial, set()

    def create_trial(tuner_id):
        waiting.add(tuner_id)
        if len(waiting) < workers and not oracle.trials:
            return Trial(oracle.get_space(), trial_id="waiting", status="IDLE")
        return create(tuner_id)

    oracle.create_trial = create_trial

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserError(f"the chief cannot listen on {address} (port in use or address not local)")
    server.start()
    print(
        f"[chief] oracle serving on {address}" + (f", waiting for {workers} workers" if workers > 1 else ""), flush=True
    )
    try:
        while not (servicer.stop_triggered and exit_chief(oracle)):
            time.sleep(poll)
    finally:
        server.stop(grace=2)
