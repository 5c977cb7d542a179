// The plain-JavaScript backend with only the kernels the graph ops of graph_ops.json need
// (Reshape and Tile too: ops call them inside, e.g. `where` broadcasts its condition with Tile).
import {registerKernel} from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu/dist/base';
import {batchMatMulConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/BatchMatMul';
import {castConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Cast';
import {concatConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Concat';
import {equalConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Equal';
import {gatherV2Config} from '@tensorflow/tfjs-backend-cpu/dist/kernels/GatherV2';
import {identityConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Identity';
import {lessEqualConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/LessEqual';
import {multiplyConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Multiply';
import {notEqualConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/NotEqual';
import {reshapeConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Reshape';
import {selectConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Select';
import {sigmoidConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Sigmoid';
import {softmaxConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Softmax';
import {stridedSliceConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/StridedSlice';
import {subConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Sub';
import {tileConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/Tile';
import {_fusedMatMulConfig} from '@tensorflow/tfjs-backend-cpu/dist/kernels/_FusedMatMul';

for (const config of [batchMatMulConfig, castConfig, concatConfig, equalConfig, gatherV2Config,
  identityConfig, lessEqualConfig, multiplyConfig, notEqualConfig, reshapeConfig, selectConfig,
  sigmoidConfig, softmaxConfig, stridedSliceConfig, subConfig, tileConfig, _fusedMatMulConfig]) {
  registerKernel(config);
}
export const name = 'cpu';
export async function configure() {}
