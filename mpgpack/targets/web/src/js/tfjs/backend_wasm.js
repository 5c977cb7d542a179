// The WebAssembly backend (XNNPACK inside) with only the kernels the graph ops of graph_ops.json
// need (Reshape and Tile too: ops call them inside, e.g. `where` broadcasts its condition with
// Tile). Its .wasm binary is served from the site itself, beside the page's scripts.
import {registerKernel} from '@tensorflow/tfjs-core';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm/dist/base';
import {batchMatMulConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/BatchMatMul';
import {castConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Cast';
import {concatConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Concat';
import {equalConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Equal';
import {gatherV2Config} from '@tensorflow/tfjs-backend-wasm/dist/kernels/GatherV2';
import {identityConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Identity';
import {lessEqualConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/LessEqual';
import {multiplyConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Multiply';
import {notEqualConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/NotEqual';
import {reshapeConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Reshape';
import {selectConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Select';
import {sigmoidConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sigmoid';
import {softmaxConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Softmax';
import {stridedSliceConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/StridedSlice';
import {subConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Sub';
import {tileConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/Tile';
import {_fusedMatMulConfig} from '@tensorflow/tfjs-backend-wasm/dist/kernels/_FusedMatMul';

for (const config of [batchMatMulConfig, castConfig, concatConfig, equalConfig, gatherV2Config,
  identityConfig, lessEqualConfig, multiplyConfig, notEqualConfig, reshapeConfig, selectConfig,
  sigmoidConfig, softmaxConfig, stridedSliceConfig, subConfig, tileConfig, _fusedMatMulConfig]) {
  registerKernel(config);
}
export const name = 'wasm';
export async function configure(baseUrl) {
  // No threads: they need cross-origin isolation headers that a plain static host lacks, and
  // a 16-unit MLP gains nothing from them.
  setWasmPaths(new URL('./', baseUrl).href);
}
