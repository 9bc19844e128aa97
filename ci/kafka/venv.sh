# Sourced: the Python clients for the Kafka checks in a virtual environment
# under .cache (made once, pinned so a client release cannot change a test
# under us). Sets `py`. Needs `root`.
venv="$root/.cache/kafka-venv"
PIP_PKGS=(confluent-kafka==2.16.1 aiokafka==0.14.0)
if ! "$venv/bin/python" -c 'import confluent_kafka, aiokafka' 2>/dev/null; then
    echo "creating $venv with ${PIP_PKGS[*]}" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${PIP_PKGS[@]}"
fi
py="$venv/bin/python"
