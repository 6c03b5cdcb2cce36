"""``kubernetes`` backend: a Dask cluster made by the dask-kubernetes operator.

The controller (``gagebench run`` in the Helm chart's Job, or a laptop with a kubeconfig)
creates one ``DaskCluster`` through :class:`dask_kubernetes.operator.KubeCluster`, from
a spec built by :mod:`gagebench.clusters._kubespec`. The facts that depend on where we
run - namespace, image, service account and the owning Job - come from the settings,
then the environment (downward API, ``GAGEBENCH_IMAGE``), then the controller pod itself
through the Kubernetes API. The cluster is deleted when the block exits, however it
exits; the ownerReference to the Job and ``idle_timeout`` are the backstops when the
controller dies without running any code (SIGKILL, node loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from gagebench.clusters._kubeerrors import diagnose_pods, translate
from gagebench.clusters._kubespec import (
    RUN_ID_ANNOTATION,
    KubeContext,
    build_cluster_spec,
    default_cluster_name,
    owner_reference,
)
from gagebench.clusters.base import ClusterBackend
from gagebench.errors import ClusterError, ConfigError
from gagebench.schema import Expect, Section, fail, setting

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("gagebench.clusters.kubernetes")

#: where Kubernetes mounts a pod's service-account token and namespace (tests repoint it)
SERVICEACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IMAGE_ENV = "GAGEBENCH_IMAGE"
JOB_NAME_ENV = "GAGEBENCH_JOB_NAME"
JOB_UID_ENV = "GAGEBENCH_JOB_UID"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")
_POLL_S = 1.0


def in_pod() -> bool:
    """True inside a Kubernetes pod with a mounted service-account token."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (SERVICEACCOUNT_DIR / "token").is_file()
    )


def _pod_name() -> str | None:
    name = os.environ.get("POD_NAME") or (os.environ.get("HOSTNAME") if in_pod() else None)
    return name.strip() if name and name.strip() else None


_StrMap = Annotated[dict[str, str | int | float], Expect("a mapping of names to strings")]
_Text = Annotated[str | None, Field(pattern=r"\S"), Expect("null or a non-empty string")]


class KubeAdapt(Section):
    """Adaptive scaling (a DaskAutoscaler): both bounds, or neither."""

    minimum: int | None = setting("cluster.kubernetes.adapt.minimum", ge=0)
    maximum: int | None = setting("cluster.kubernetes.adapt.maximum", ge=1)


class KubeResources(Section):
    """A pod's resource requests and limits (Kubernetes quantities)."""

    requests: _StrMap | None = Field(default_factory=dict, description="Resource requests.")
    limits: _StrMap | None = Field(default_factory=dict, description="Resource limits.")


class KubeSecretEnv(Section):
    """Environment variables from the keys of an existing Secret."""

    secret_name: str | None = setting("cluster.kubernetes.secret_env.secret_name")
    keys: _StrMap = setting("cluster.kubernetes.secret_env.keys")


class KubeSecurityContext(Section):
    """The non-root user and group the pods run as."""

    run_as_user: int = setting("cluster.kubernetes.security_context.run_as_user", ge=1)
    run_as_group: int = setting("cluster.kubernetes.security_context.run_as_group", ge=1)
    fs_group: int = setting("cluster.kubernetes.security_context.fs_group", ge=1)


class KubeOwnerJob(Section):
    """The Job that owns the DaskCluster."""

    name: str = Field(min_length=1, description="The Job's name.")
    uid: str = Field(min_length=1, description="The Job's uid.")


class KubernetesSettings(Section):
    """``cluster.kubernetes``: a DaskCluster of the dask-kubernetes operator. The rules
    between keys (DNS names, adapt's bounds, a Secret for secret_env) are checked by the
    backend when it is built."""

    name: Annotated[str | None, Expect("a lowercase DNS name of at most 53 characters")] = setting(
        "cluster.kubernetes.name"
    )
    namespace: Annotated[str | None, Expect("a Kubernetes namespace name")] = setting(
        "cluster.kubernetes.namespace", pattern=_DNS_LABEL.pattern.replace("\\Z", "$")
    )
    image: _Text = setting("cluster.kubernetes.image")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = setting(
        "cluster.kubernetes.image_pull_policy"
    )
    service_account: _Text = setting("cluster.kubernetes.service_account")
    n_workers: int = setting("cluster.kubernetes.n_workers", ge=0)
    adapt: KubeAdapt = setting("cluster.kubernetes.adapt")
    scheduler_resources: Annotated[
        KubeResources, Expect("a mapping with only 'requests' and 'limits'")
    ] = setting("cluster.kubernetes.scheduler_resources")
    worker_resources: Annotated[
        KubeResources, Expect("a mapping with only 'requests' and 'limits'")
    ] = setting("cluster.kubernetes.worker_resources")
    worker_threads: int = setting("cluster.kubernetes.worker_threads", ge=1)
    env: _StrMap = setting("cluster.kubernetes.env")
    secret_env: Annotated[KubeSecretEnv, Expect("{secret_name: NAME, keys: {ENV: key}}")] = setting(
        "cluster.kubernetes.secret_env"
    )
    node_selector: _StrMap = setting("cluster.kubernetes.node_selector")
    tolerations: Annotated[list[dict[str, Any]], Expect("a list of toleration mappings")] = setting(
        "cluster.kubernetes.tolerations"
    )
    affinity: Annotated[dict[str, Any], Expect("a Kubernetes affinity mapping")] = setting(
        "cluster.kubernetes.affinity"
    )
    labels: _StrMap = setting("cluster.kubernetes.labels")
    annotations: _StrMap = setting("cluster.kubernetes.annotations")
    security_context: Annotated[
        KubeSecurityContext, Expect("{run_as_user: N, run_as_group: N, fs_group: N}")
    ] = setting("cluster.kubernetes.security_context")
    idle_timeout: int = setting("cluster.kubernetes.idle_timeout", ge=0)
    wait_timeout: Annotated[float, Expect("seconds > 0")] = setting(
        "cluster.kubernetes.wait_timeout", gt=0
    )
    owner_job: Annotated[
        Literal["auto"] | KubeOwnerJob | None, Expect("'auto', null or {name: JOB, uid: UID}")
    ] = setting("cluster.kubernetes.owner_job")

    @model_validator(mode="after")
    def _between_keys(self) -> KubernetesSettings:
        """Adaptive scaling or a fixed size; env names; a Secret for secret_env.keys."""
        lo, hi = self.adapt.minimum, self.adapt.maximum
        if (lo is None) != (hi is None):
            given = self.adapt.model_dump()
            raise fail(f"expected both minimum and maximum set, or both null, got {given}", "adapt")
        if lo is not None and hi is not None and hi < max(1, lo):
            raise fail(f"expected an integer >= {max(1, lo)}, got {hi!r}", "adapt.maximum")
        if lo is None and self.n_workers < 1:
            raise fail(f"expected an integer >= 1, got {self.n_workers!r}", "n_workers")
        for env_name in self.env:
            if not _ENV_NAME.match(env_name):
                raise fail(f"expected environment variable names, got {env_name!r}", "env")
        secret = self.secret_env
        if secret.keys and not (secret.secret_name and _DNS_LABEL.match(secret.secret_name)):
            raise fail(
                "expected the name of an existing Secret when secret_env.keys is set, "
                f"got {secret.secret_name!r}",
                "secret_env.secret_name",
            )
        return self


class KubernetesBackend(ClusterBackend):
    """A DaskCluster created through the dask-kubernetes operator; deleted on exit."""

    name = "kubernetes"
    started_here = True  # the DaskCluster (and its workers) is created and deleted per run
    memory_key = "worker_resources.limits.memory"
    Settings = KubernetesSettings

    def __init__(self, cfg: Any) -> None:
        try:
            import dask_kubernetes  # noqa: F401
            import kr8s  # noqa: F401
        except ImportError as exc:
            raise ClusterError(
                f"the kubernetes backend needs dask-kubernetes and kr8s ({exc}): "
                "pip install 'gagebench[kubernetes]'"
            ) from exc
        super().__init__(cfg)
        self._validate()

    # -- settings ---------------------------------------------------------------------------
    def _validate(self) -> None:
        """The rule that needs dask-kubernetes (its cluster-name pattern); the schema
        (:class:`KubernetesSettings`) checked everything else."""
        from dask_kubernetes.constants import VALID_CLUSTER_NAME

        name = self.options["name"]
        if name is not None and not VALID_CLUSTER_NAME.match(name):
            raise ConfigError(
                f"{self.key('name')}: expected a lowercase DNS name of at most 53 "
                f"characters, got {name!r}"
            )
        secret = self.options["secret_env"]
        self.options["secret_env"] = {
            "secret_name": secret.get("secret_name"),
            "keys": dict(secret.get("keys") or {}),
        }

    # -- where we run ------------------------------------------------------------------------
    @property
    def cluster_name(self) -> str:
        """The DaskCluster name: configured, else ``gagebench-<run_id>`` made DNS-safe."""
        return self.options["name"] or default_cluster_name(self.cfg.run_id)

    def namespace(self) -> str:
        """Configured, else ``POD_NAMESPACE``, else the pod's namespace file; never a guess."""
        configured = self.options["namespace"] or os.environ.get("POD_NAMESPACE", "").strip()
        if configured:
            return str(configured)
        ns_file = SERVICEACCOUNT_DIR / "namespace"
        if ns_file.is_file():
            text = ns_file.read_text().strip()
            if text:
                return text
        raise ConfigError(
            f"{self.key('namespace')} is not set and this is not a pod (no POD_NAMESPACE, "
            f"no {ns_file}): set the namespace the Dask cluster should run in - gagebench "
            "never falls back to 'default'"
        )

    def _offline_owner(self) -> Mapping[str, Any] | None:
        owner = self.options["owner_job"]
        if isinstance(owner, Mapping):
            return owner_reference(owner["name"], owner["uid"])
        if owner == "auto":
            name, uid = os.environ.get(JOB_NAME_ENV), os.environ.get(JOB_UID_ENV)
            if name and uid:
                return owner_reference(name, uid)
        return None

    def offline_context(self) -> KubeContext:
        """The context from settings and environment only (``gagebench cluster-spec``)."""
        image = self.options["image"] or os.environ.get(IMAGE_ENV, "").strip()
        if not image:
            raise ConfigError(
                f"{self.key('image')} is not set and {IMAGE_ENV} is empty: without a cluster "
                "to ask, the image must come from the settings or the environment"
            )
        return KubeContext(
            namespace=self.namespace(),
            image=image,
            service_account=self.options["service_account"],
            owner=self._offline_owner(),
        )

    def live_context(self) -> KubeContext:
        """The context, asking the API about the controller pod for what is not configured."""
        import kr8s
        from kr8s.objects import Job, Pod

        namespace = self.namespace()
        pod: Any = None
        pod_name = _pod_name()
        needs_pod = (
            not (self.options["image"] or os.environ.get(IMAGE_ENV))
            or not self.options["service_account"]
            or self.options["owner_job"] == "auto"
        )
        api = kr8s.api()
        if pod_name and needs_pod:
            pod_ns = os.environ.get("POD_NAMESPACE") or _read(SERVICEACCOUNT_DIR / "namespace")
            try:
                pod = Pod.get(pod_name, namespace=pod_ns or namespace, api=api)
            except kr8s.NotFoundError as exc:
                raise ClusterError(
                    f"the controller pod {pod_name!r} was not found in namespace "
                    f"{pod_ns or namespace!r}: set POD_NAME and POD_NAMESPACE from the "
                    "downward API (the Helm chart does), or set "
                    f"{self.key('image')}, {self.key('service_account')} and "
                    f"{self.key('owner_job')} explicitly"
                ) from exc
        image = self.options["image"] or os.environ.get(IMAGE_ENV, "").strip()
        if not image and pod is not None:
            image = _pod_image(pod.raw)
        if not image:
            raise ConfigError(
                f"{self.key('image')} is not set, {IMAGE_ENV} is empty and the controller is "
                "not running in a pod whose image could be reused: set the image"
            )
        account = self.options["service_account"]
        if not account and pod is not None:
            account = pod.raw.get("spec", {}).get("serviceAccountName")
        owner: Mapping[str, Any] | None = None
        setting = self.options["owner_job"]
        if isinstance(setting, Mapping):
            owner = owner_reference(setting["name"], setting["uid"])
        elif setting == "auto" and pod is not None:
            ref = next(
                (
                    r
                    for r in pod.raw.get("metadata", {}).get("ownerReferences") or []
                    if r.get("kind") == "Job"
                ),
                None,
            )
            if ref is None:
                log.info("controller pod %s is not owned by a Job: no ownerReference", pod_name)
            elif pod.namespace != namespace:
                log.warning(
                    "DaskCluster namespace %s differs from the controller's %s: an owner "
                    "reference cannot cross namespaces, so none is set",
                    namespace,
                    pod.namespace,
                )
            else:
                job = Job.get(ref["name"], namespace=namespace, api=api)
                owner = owner_reference(job.name, job.raw["metadata"]["uid"])
        return KubeContext(namespace=namespace, image=image, service_account=account, owner=owner)

    def manifest(self, ctx: KubeContext | None = None) -> dict[str, Any]:
        """The DaskCluster object this backend creates (offline context unless given)."""
        return build_cluster_spec(
            self.options,
            ctx or self.offline_context(),
            name=self.cluster_name,
            run_id=self.cfg.run_id,
        )

    # -- the cluster ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        from distributed import Client

        name = self.cluster_name
        namespace: str | None = self.options["namespace"]
        adapt = self.options["adapt"]
        cluster: Any = None
        created = False
        failed = False
        try:
            with self._translated(lambda: namespace, name):
                namespace = self.namespace()
                ctx = self.live_context()
                spec = self.manifest(ctx)
                self._remove_stale(name, namespace)
                created = True
                cluster = _kubecluster_type()(
                    custom_cluster_spec=spec,
                    namespace=namespace,
                    shutdown_on_close=True,
                    resource_timeout=int(self.options["wait_timeout"]) + 10,
                    wait_timeout=float(self.options["wait_timeout"]),
                    quiet=True,
                )
                if adapt["minimum"] is not None:
                    cluster.adapt(minimum=adapt["minimum"], maximum=adapt["maximum"])
                client = Client(cluster, set_as_default=False)
            with client:
                first = 1 if (adapt["minimum"] is None or adapt["minimum"] > 0) else 0
                with self._translated(lambda: namespace, name):
                    wait_for_workers(
                        client,
                        first,
                        float(self.options["wait_timeout"]),
                        lambda: diagnose_pods(_cluster_pods(name, str(namespace))),
                    )
                log.info("Dask cluster %s ready in namespace %s", name, namespace)
                yield client
        except BaseException:
            failed = True
            raise
        finally:
            self._teardown(cluster, created, name, str(namespace), failed)

    def _teardown(
        self, cluster: Any, created: bool, name: str, namespace: str, failed: bool
    ) -> None:
        """Delete what we created; a teardown error never hides the error that ended the run."""
        try:
            if cluster is not None:
                cluster.close(timeout=120)
            elif created:
                _delete_cluster(name, namespace)
        except Exception as exc:
            if not failed:
                raise ClusterError(
                    f"could not delete DaskCluster {name!r} in {namespace!r} ({exc}): delete "
                    f"it by hand (kubectl delete daskcluster {name} -n {namespace})"
                ) from exc
            log.error(
                "could not delete DaskCluster %s in %s (%s: %s): delete it by hand "
                "(kubectl delete daskcluster %s -n %s); the idle timeout and the owner Job "
                "also remove it",
                name,
                namespace,
                type(exc).__name__,
                exc,
                name,
                namespace,
            )

    @contextlib.contextmanager
    def _translated(self, namespace: Callable[[], str | None], name: str) -> Iterator[None]:
        try:
            yield
        except (ConfigError, ClusterError):
            raise
        except Exception as exc:
            error = translate(exc, namespace=namespace(), name=name)
            if error is None:
                raise
            raise error from exc

    def _remove_stale(self, name: str, namespace: str) -> None:
        """Delete a leftover DaskCluster of this run (a killed earlier attempt); refuse others."""
        import kr8s

        old = _cluster_ref(name, namespace)
        if not old.exists():
            return
        with contextlib.suppress(kr8s.NotFoundError):
            old.refresh()
        run_id = (old.raw.get("metadata", {}).get("annotations") or {}).get(RUN_ID_ANNOTATION)
        if run_id != self.cfg.run_id:
            raise ClusterError(
                f"a DaskCluster named {name!r} already exists in namespace {namespace!r} and "
                f"was not made by this run: set {self.key('name')} to another name or "
                f"delete it (kubectl delete daskcluster {name} -n {namespace})"
            )
        log.warning("deleting DaskCluster %s left by an earlier attempt of this run", name)
        _delete_cluster(name, namespace)


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def _pod_image(pod: Mapping[str, Any]) -> str | None:
    containers = pod.get("spec", {}).get("containers") or []
    preferred = [c for c in containers if c.get("name") in ("gagebench", "controller")]
    for container in preferred or containers:
        if container.get("image"):
            return str(container["image"])
    return None


def _daskcluster_class() -> Any:
    from kr8s.objects import new_class

    return new_class("DaskCluster", "kubernetes.dask.org/v1", namespaced=True)


def _cluster_pods(name: str, namespace: str) -> list[dict[str, Any]]:
    from kr8s.objects import Pod

    pods = Pod.list(namespace=namespace, label_selector={"dask.org/cluster-name": name})
    return [p.raw for p in pods if isinstance(p, Pod)]


def _cluster_ref(name: str, namespace: str) -> Any:
    """A handle on DaskCluster ``name`` (not fetched: ``exists()``/``refresh()`` ask)."""
    import kr8s

    return _daskcluster_class()(
        {"metadata": {"name": name, "namespace": namespace}}, api=kr8s.api()
    )


def _delete_cluster(name: str, namespace: str, timeout: float = 60.0) -> None:
    """Delete a DaskCluster by name and wait until it is gone (the operator cascades)."""
    import kr8s

    obj = _cluster_ref(name, namespace)
    try:
        obj.delete()
    except kr8s.NotFoundError:
        return
    deadline = time.monotonic() + timeout
    while obj.exists():
        if time.monotonic() > deadline:
            raise ClusterError(
                f"DaskCluster {name!r} in {namespace!r} still exists {timeout:.0f} s after "
                f"deletion: delete it by hand (kubectl delete daskcluster {name} -n {namespace})"
            )
        time.sleep(_POLL_S)


def wait_for_workers(
    client: Client, n: int, timeout: float, diagnose: Callable[[], str | None]
) -> None:
    """Wait until ``n`` workers joined; on timeout raise a ClusterError that says why."""
    if n <= 0:
        return
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError as exc:
        reason = diagnose()
        raise ClusterError(
            f"{n} Dask worker(s) did not join within {timeout:.0f} s"
            + (f": {reason}" if reason else ": check `kubectl describe pods` of the workers")
            + " (raise gagebench.cluster.kubernetes.wait_timeout if they are just slow)"
        ) from exc


async def watch_startup(name: str, namespace: str, deadline: float) -> None:
    """Raise a ClusterError as soon as the cluster's pods cannot run, or at the deadline."""
    import kr8s
    from kr8s.asyncio.objects import Pod

    from gagebench.clusters._kubeerrors import OPERATOR_HINT

    phase: str | None = None
    while True:
        pods = [
            p.raw
            async for p in Pod.list(
                namespace=namespace, label_selector={"dask.org/cluster-name": name}
            )
            if isinstance(p, Pod)
        ]
        reason = diagnose_pods(pods)
        if reason:
            raise ClusterError(f"DaskCluster {name!r} cannot start: {reason}")
        obj = await _async_daskcluster_class()({"metadata": {"name": name, "namespace": namespace}})
        with contextlib.suppress(kr8s.NotFoundError):
            await obj.refresh()
            phase = (obj.raw.get("status") or {}).get("phase")
            if phase == "Pending" and await _unstick_pending(obj, pods):
                phase = "Running"
        if time.monotonic() > deadline:
            if phase is None:
                raise ClusterError(
                    f"DaskCluster {name!r} in namespace {namespace!r} got no status from the "
                    "dask-kubernetes operator: the operator is not running or not watching "
                    f"this namespace; {OPERATOR_HINT}"
                )
            raise ClusterError(
                f"the Dask scheduler of {name!r} was not ready in time (cluster phase "
                f"{phase}): check `kubectl describe pods -n {namespace} -l "
                f"dask.org/cluster-name={name}`, or raise "
                "gagebench.cluster.kubernetes.wait_timeout"
            )
        await asyncio.sleep(_POLL_S)


# --- dask-kubernetes#968 workaround (found by tests/kube_emulated) ---------------------------
async def _unstick_pending(cluster: Any, pods: Sequence[Mapping[str, Any]]) -> bool:
    """Set phase Running on a DaskCluster the operator left Pending with its scheduler up.

    dask-kubernetes <= 2026.3.0 races two handlers: the scheduler Service's status handler
    sets the phase to Running, then the component-creating handler finishes and writes
    Pending over it, so KubeCluster waits forever (dask/dask-kubernetes#968, fixed by the
    unreleased PR #977). When the scheduler pod is Ready and its ClusterIP Service exists,
    the operator would have said Running: we write it, once, and say so.
    """
    from kr8s.asyncio.objects import Service

    scheduler_ready = False
    for raw in pods:
        if (raw.get("metadata", {}).get("labels") or {}).get("dask.org/component") != "scheduler":
            continue
        conditions = (raw.get("status") or {}).get("conditions") or []
        scheduler_ready |= any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        )
    if not scheduler_ready:
        return False
    try:
        service = await Service.get(f"{cluster.name}-scheduler", namespace=cluster.namespace)
    except Exception:  # not there yet: the operator may still be working
        return False
    if (service.raw.get("spec") or {}).get("type", "ClusterIP") == "LoadBalancer":
        return False  # Pending is right until the load balancer has an address
    log.warning(
        "DaskCluster %s stayed Pending with its scheduler ready (dask-kubernetes#968): "
        "setting status.phase=Running as the operator meant to",
        cluster.name,
    )
    try:
        await cluster.patch({"status": {"phase": "Running"}})
    except Exception as exc:  # e.g. RBAC without "patch" on daskclusters: keep waiting
        log.warning("could not set the phase of DaskCluster %s: %s", cluster.name, exc)
        return False
    return True


# --- end dask-kubernetes#968 workaround -------------------------------------------------------


def _async_daskcluster_class() -> Any:
    from dask_kubernetes.operator._objects import DaskCluster

    return DaskCluster


_KUBECLUSTER: Any = None


def _kubecluster_type() -> Any:
    """KubeCluster whose start gives up with a reason instead of waiting forever.

    dask-kubernetes waits for the scheduler pod without a limit when it never runs (an
    image that cannot be pulled leaves it Pending); we race its start with
    :func:`watch_startup`, which reads the pods and fails with the cause.
    """
    global _KUBECLUSTER
    if _KUBECLUSTER is not None:
        return _KUBECLUSTER
    from dask_kubernetes.operator import KubeCluster

    class WatchedKubeCluster(KubeCluster):
        def __init__(self, *, wait_timeout: float, **kwargs: Any) -> None:
            self._gagebench_wait = wait_timeout
            super().__init__(**kwargs)

        async def _start(self) -> None:
            deadline = time.monotonic() + self._gagebench_wait
            watch = asyncio.ensure_future(watch_startup(self.name, self.namespace, deadline))
            start = asyncio.ensure_future(super()._start())
            try:
                await asyncio.wait({watch, start}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (watch, start):
                    if not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
            if start.done() and not start.cancelled() and start.exception() is None:
                return
            if start.done() and not start.cancelled():
                error = start.exception()
                assert error is not None
                raise error
            watch.result()

    _KUBECLUSTER = WatchedKubeCluster
    return _KUBECLUSTER
