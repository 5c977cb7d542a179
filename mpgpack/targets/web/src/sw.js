// Service worker: after the first visit the page, TF.js, its wasm binary and the model work
// offline. pack.py fills in the cache name (the model version plus a hash of the site's files,
// so a new build replaces the old cache) and the list of files to cache on install.
const CACHE = '__CACHE_NAME__';
const PRECACHE = __PRECACHE__;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith('mpg-') && n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// The page hands over what it fetched before the worker controlled it (see main.js).
self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'cache' && Array.isArray(event.data.urls)) {
    const urls = event.data.urls.filter((u) => new URL(u).origin === self.location.origin);
    event.waitUntil(caches.open(CACHE).then((cache) => Promise.all(urls.map(async (u) => {
      if (!(await cache.match(u))) await cache.add(u).catch(() => {});
    }))));
  }
});

// Cache first (every file belongs to one build, named by CACHE), network as the fallback; what
// comes from the network is kept. The page itself is matched without its query (?selftest).
self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.includes('/report/')) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request, {ignoreSearch: request.mode === 'navigate'});
    if (hit) return hit;
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') cache.put(request, response.clone());
    return response;
  })());
});
