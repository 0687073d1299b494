# Shared by the benchmark scripts: source it, then call the functions.

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nginx BIN WORKDIR: a lab CA and certificate from meshprobe's own PKI, a 100-byte page, and nginx (Debian)
# serving it over TLS HTTP/2 on core 1. Sets NGINX_URL and NGINX_CA; stop it with stop_nginx WORKDIR.
start_nginx() {
  local bin=$1 work=$2 port
  "$bin" pki ca --trust-domain bench.local --out "$work/ca" >/dev/null
  "$bin" pki issue --ca-dir "$work/ca" --spiffe-id spiffe://bench.local/ns/bench/sa/nginx --dns localhost --out "$work/nginx" >/dev/null
  mkdir -p "$work/html"
  head -c 100 /dev/zero | tr '\0' 'x' > "$work/html/index.html"
  port=$(free_port)
  cat > "$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $work/nginx/cert-chain.pem;
        ssl_certificate_key $work/nginx/key.pem;
        root $work/html;
    }
}
CONF
  taskset -c 1 nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log"
  sleep 0.3
  NGINX_URL="https://127.0.0.1:$port/index.html"
  NGINX_CA="$work/ca/ca.pem"
}

stop_nginx() { kill "$(cat "$1/nginx.pid" 2>/dev/null)" 2>/dev/null || true; }
